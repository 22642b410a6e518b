package sink_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
)

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	g := blockdiff.Geometry{Size: 1 << 20, BlockSize: 64 << 10}
	path := filepath.Join(dir, "restored.img")
	s, err := sink.OpenFile(path, g, sink.Options{ManifestPath: path + ".manifest"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	block := bytes.Repeat([]byte("blockferry"), 64<<10/10+1)[:64<<10]
	d := sha256.Sum256(block)
	if err := s.WriteBlock(ctx, 3, block, d); err != nil {
		log.Fatal(err)
	}
	if err := s.CopyBlock(ctx, 7, 3); err != nil { // same content, copied locally
		log.Fatal(err)
	}
	m, _ := blockdiff.NewManifest(g) // all holes...
	m.Set(3, blockdiff.Data, d)      // ...but blocks 3 and 7
	m.Set(7, blockdiff.Data, d)
	if err := s.Commit(ctx, m); err != nil {
		log.Fatal(err)
	}

	fi, _ := os.Stat(path)
	back, _ := blockdiff.ReadManifestFile(path + ".manifest")
	data, zero, hole := back.Counts()
	fmt.Println("size:", fi.Size())
	fmt.Println("manifest data/zero/hole:", data, zero, hole)
	// Output:
	// size: 1048576
	// manifest data/zero/hole: 2 0 14
}

func ExampleNewMemory() {
	ctx := context.Background()
	s, err := sink.NewMemory(blockdiff.Geometry{Size: 8192, BlockSize: 4096})
	if err != nil {
		log.Fatal(err)
	}
	block := bytes.Repeat([]byte{'x'}, 4096)
	s.WriteBlock(ctx, 1, block, sha256.Sum256(block))
	s.Commit(ctx, nil)
	fmt.Println(s.Writes(), s.Committed(), string(s.Bytes()[4096:4100]))
	// Output: 1 true xxxx
}
