package replicate_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// A full copy of a small in-memory volume, then an incremental run that
// finds nothing to send.
func ExampleRun() {
	ctx := context.Background()
	data := bytes.Repeat([]byte("blockferry!"), 6000) // 66000 bytes: 17 blocks of 4 KiB
	clear(data[8192:12288])                           // block 2 is zero
	src, err := source.NewMemory(data, 4096)
	if err != nil {
		log.Fatal(err)
	}

	dst, err := sink.NewMemory(src.Geometry())
	if err != nil {
		log.Fatal(err)
	}
	first, err := replicate.Run(ctx, src, dst, replicate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("first run: plan %s, %d written, %d zeroed, identical %v\n",
		first.Plan, first.Stats.Written, first.Stats.Zeroed, bytes.Equal(dst.Bytes(), data))

	// The target as it now stands, with the manifest saved by the first run.
	again, err := sink.NewMemory(src.Geometry())
	if err != nil {
		log.Fatal(err)
	}
	for i := range src.Geometry().Blocks() {
		e := first.Manifest.Entry(i)
		if e.Kind == blockdiff.Data {
			b := data[i*4096 : min((i+1)*4096, int64(len(data)))]
			if err := again.WriteBlock(ctx, i, b, e.Digest); err != nil {
				log.Fatal(err)
			}
		}
	}
	second, err := replicate.Run(ctx, src, again, replicate.Options{Base: first.Manifest})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("second run: plan %s, %d written, %d unchanged\n",
		second.Plan, second.Stats.Written, second.Stats.SkippedUnchanged)
	// Output:
	// first run: plan live-target, 16 written, 0 zeroed, identical true
	// second run: plan hash-base, 0 written, 17 unchanged
}

// Verify re-hashes a volume against a manifest and lists the blocks that
// differ.
func ExampleVerify() {
	ctx := context.Background()
	data := bytes.Repeat([]byte{7}, 8*4096)
	good, _ := source.NewMemory(data, 4096)
	dst, _ := sink.NewMemory(good.Geometry())
	res, err := replicate.Run(ctx, good, dst, replicate.Options{})
	if err != nil {
		log.Fatal(err)
	}

	data[5*4096] = 8 // block 5 rots
	bad, _ := source.NewMemory(data, 4096)
	vr, err := replicate.Verify(ctx, bad, res.Manifest, replicate.VerifyOptions{})
	fmt.Println(vr.Checked, vr.Mismatched, vr.Mismatches[0].Index)
	fmt.Println(err)
	// Output:
	// 8 1 5
	// replicate: verify: 1 of 8 blocks differ from the manifest: target verify block 5: holds data 2aee9699868c23fada44727cebf7018672101b27267b041f6645b1c2c5a4ca26, manifest says data c9ac7b0624824f844f6c7f3d50fab9741a8914e878467e8daaedca143a34d90b: checksum mismatch
}
