package source_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/source"
)

func ExampleNewMemory() {
	data := make([]byte, 10000) // two full 4 KiB blocks and a short one
	copy(data[8192:], "hello")
	src, err := source.NewMemory(data, 4096)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, src.Geometry().BlockSize)
	n, err := src.ReadBlock(context.Background(), 2, buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(src.Geometry())
	fmt.Printf("block 2: %d bytes starting %q\n", n, buf[:5])
	// Output:
	// 10000 bytes in 3 blocks of 4096
	// block 2: 1808 bytes starting "hello"
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A sparse 1 MiB image with data only in its second 64 KiB block.
	path := filepath.Join(dir, "disk.img")
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	f.Truncate(1 << 20)
	f.WriteAt([]byte("boot"), 64<<10)
	f.Close()

	src, err := source.OpenFile(path, source.Options{BlockSize: 64 << 10})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	fmt.Println(src.Geometry())
	src.Extents(context.Background(), func(e blockdiff.Extent) error {
		fmt.Printf("data in blocks %d to %d\n", e.First, e.End()-1)
		return nil
	})
	fmt.Println("changed:", src.Changed())
	// Output:
	// 1048576 bytes in 16 blocks of 65536
	// data in blocks 1 to 1
	// changed: <nil>
}
