package blockdifftest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/source"
)

func ExampleVolume() {
	g := blockdiff.Geometry{Size: 64 * 4096, BlockSize: 4096}
	v1 := blockdifftest.Volume(1, g, 0.25, 0.25)
	v2 := blockdifftest.Mutate(v1, 2, g.BlockSize, 0.1)
	fmt.Println(len(v1), bytes.Equal(v1, blockdifftest.Volume(1, g, 0.25, 0.25)), bytes.Equal(v1, v2))
	// Output: 262144 true false
}

func ExampleNewFaultySource() {
	mem, _ := source.NewMemory(make([]byte, 4*4096), 4096)
	src := blockdifftest.NewFaultySource(mem).FailCall(2, syscall.EIO)
	buf := make([]byte, 4096)
	for i := range int64(3) {
		_, err := src.ReadBlock(context.Background(), i, buf)
		fmt.Println(i, err, errors.Is(err, syscall.EIO))
	}
	// Output:
	// 0 <nil> false
	// 1 source read block 1: blockdifftest: injected fault: input/output error true
	// 2 <nil> false
}
