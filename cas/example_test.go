package cas_test

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// volume returns 16 blocks of 4 KiB: block i holds the byte i+1, except
// that blocks 3 and 7 are zero and block 10 repeats block 9.
func volume() []byte {
	const bs = 4 << 10
	v := make([]byte, 16*bs)
	for i := range 16 {
		c := byte(i + 1)
		switch i {
		case 3, 7:
			c = 0
		case 10:
			c = 10
		}
		for j := range bs {
			v[i*bs+j] = c
		}
	}
	return v
}

// Example backs a small in-memory volume up into a store in a local
// directory twice (the second time with two blocks changed), lists the
// snapshots, and restores the second one.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "cas-example-")
	defer os.RemoveAll(dir)

	backend, err := cas.NewDir(dir)
	if err != nil {
		panic(err)
	}
	store, err := cas.Open(ctx, backend, cas.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	backup := func(name, parent string, data []byte) {
		src, err := source.NewMemory(data, 4<<10)
		if err != nil {
			panic(err)
		}
		dst, err := store.NewSnapshotSink(ctx, name, src.Geometry(), cas.SnapshotOptions{Parent: parent})
		if err != nil {
			panic(err)
		}
		defer dst.Close()
		if _, err := replicate.Run(ctx, src, dst, replicate.Options{}); err != nil {
			panic(err)
		}
		st := dst.Stats()
		fmt.Printf("%s: %d data blocks, %d zero, %d chunks stored\n", name, st.DataBlocks, st.ZeroBlocks, st.Uploaded)
	}
	v1 := volume()
	backup("monday", "", v1)
	v2 := bytes.Clone(v1)
	copy(v2[0:4<<10], bytes.Repeat([]byte{0xaa}, 4<<10)) // block 0 changes
	copy(v2[5<<12:6<<12], bytes.Repeat([]byte{0xbb}, 4<<10))
	backup("tuesday", "monday", v2)

	snaps, err := store.List(ctx)
	if err != nil {
		panic(err)
	}
	for _, si := range snaps {
		fmt.Printf("snapshot %s: %d bytes, %d data blocks\n", si.Name, si.Geometry.Size, si.DataBlocks)
	}

	snap, err := store.OpenSnapshot(ctx, "tuesday")
	if err != nil {
		panic(err)
	}
	out, err := sink.NewMemory(snap.Geometry())
	if err != nil {
		panic(err)
	}
	if _, err := replicate.Run(ctx, snap, out, replicate.Options{}); err != nil {
		panic(err)
	}
	fmt.Println("restored tuesday identical:", bytes.Equal(out.Bytes(), v2))
	// Output:
	// monday: 14 data blocks, 2 zero, 13 chunks stored
	// tuesday: 14 data blocks, 2 zero, 2 chunks stored
	// snapshot monday: 65536 bytes, 14 data blocks
	// snapshot tuesday: 65536 bytes, 14 data blocks
	// restored tuesday identical: true
}
