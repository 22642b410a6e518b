package blockdiff_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// block returns the digest of a 4 KiB block filled with b.
func block(b byte) blockdiff.Digest {
	return hashing.Sum256(bytes.Repeat([]byte{b}, 4096))
}

func ExampleDiff() {
	g := blockdiff.Geometry{Size: 8 * 4096, BlockSize: 4096}
	base, _ := blockdiff.NewManifest(g)
	target, _ := blockdiff.NewManifest(g)
	for i, c := range []byte("aabcd...") { // '.' is a hole
		if c != '.' {
			base.Set(int64(i), blockdiff.Data, block(c))
		}
	}
	for i, c := range []byte("aaXX.ba.") {
		if c != '.' {
			target.Set(int64(i), blockdiff.Data, block(c))
		}
	}
	cs, err := blockdiff.Diff(base.Iter(), target.Iter())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("changed %d, zeroed %d, distinct %d, bytes %d\n",
		cs.Stats.Changed, cs.Stats.Zeroed, cs.Stats.Distinct, cs.Stats.Bytes)
	if err := cs.FindLocal(base.Iter()); err != nil {
		log.Fatal(err)
	}
	cs.Groups(func(gr blockdiff.Group) error {
		fmt.Printf("write %s… to %v (local copy at %d)\n", gr.Digest.String()[:8], gr.Indices, gr.Local)
		return nil
	})
	cs.ZeroRuns(func(e blockdiff.Extent) error {
		fmt.Printf("zero blocks %d to %d\n", e.First, e.End()-1)
		return nil
	})
	// Output:
	// changed 4, zeroed 1, distinct 3, bytes 12288
	// write d349a508… to [2 3] (local copy at -1)
	// write 5389688a… to [5] (local copy at -1)
	// write c93eee2d… to [6] (local copy at 0)
	// zero blocks 4 to 4
}

func ExampleNewWriter() {
	g := blockdiff.Geometry{Size: 3*4096 + 100, BlockSize: 4096}
	var buf bytes.Buffer
	w, err := blockdiff.NewWriter(&buf, g, "file:/images/disk.img")
	if err != nil {
		log.Fatal(err)
	}
	entries := []blockdiff.Entry{
		{Index: 0, Kind: blockdiff.Data, Digest: block('x')},
		{Index: 1, Kind: blockdiff.Zero},
		{Index: 2, Kind: blockdiff.Hole},
		{Index: 3, Kind: blockdiff.Hole},
	}
	for _, e := range entries {
		if err := w.Append(e); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("encoded bytes:", buf.Len())

	r, err := blockdiff.NewReader(&buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Geometry(), r.Origin())
	for {
		e, err := r.Next()
		if err == io.EOF {
			break // the trailer checked out
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Index, e.Kind, e.Digest.String()[:8])
	}
	fmt.Println("ID matches:", r.ID() == w.ID())
	// Output:
	// encoded bytes: 146
	// 12388 bytes in 4 blocks of 4096 file:/images/disk.img
	// 0 data a2e659da
	// 1 zero ad7facb2
	// 2 hole ad7facb2
	// 3 hole cd00e292
	// ID matches: true
}

func ExampleParseDigest() {
	d, err := blockdiff.ParseDigest("ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d == hashing.ZeroDigest(4096))
	_, err = blockdiff.ParseDigest("ad7f")
	fmt.Println(err)
	// Output:
	// true
	// blockdiff: digest "ad7f": want 64 hex digits, got 4
}

func ExampleIsManifest() {
	g := blockdiff.Geometry{Size: 4 * 4096, BlockSize: 4096}
	m, _ := blockdiff.NewManifest(g)
	var enc bytes.Buffer
	if _, err := m.WriteTo(&enc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(blockdiff.IsManifest(enc.Bytes()[:blockdiff.ManifestPrefixLen]))
	fmt.Println(blockdiff.IsManifest([]byte("#!/bin/sh\necho hi\n")))
	fmt.Println(blockdiff.IsManifest(enc.Bytes()[:3])) // too short to tell
	// Output:
	// true
	// false
	// false
}
