package hashing_test

import (
	"bytes"
	"fmt"

	"github.com/blockferry/blockferry/hashing"
)

func ExampleSum256() {
	d := hashing.Sum256([]byte("abc"))
	fmt.Printf("%x\n", d)
	// Output:
	// ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
}

func ExampleSumBatch() {
	blocks := [][]byte{[]byte("abc"), {}, bytes.Repeat([]byte{0}, 4096)}
	dst := make([][hashing.Size]byte, len(blocks)) // reuse dst across calls
	hashing.SumBatch(dst, blocks)
	for i, d := range dst {
		fmt.Printf("%d %x zero=%v\n", i, d[:8], hashing.IsZero(blocks[i]))
	}
	fmt.Println(dst[2] == hashing.ZeroDigest(4096))
	// Output:
	// 0 ba7816bf8f01cfea zero=false
	// 1 e3b0c44298fc1c14 zero=true
	// 2 ad7facb2586fc6e9 zero=true
	// true
}

// The LINEAR checksum of EBS CompleteSnapshot for the worked example in
// docs/ebs-direct-api.md §5.8: blocks 0, 2 and 5 of 512 KiB filled with
// 0x01, 0xAB and 0x02, added in block-index order.
func ExampleLinear() {
	var l hashing.Linear
	for _, fill := range []byte{0x01, 0xAB, 0x02} { // indexes 0, 2, 5
		l.Add(hashing.Sum256(bytes.Repeat([]byte{fill}, 512<<10)))
	}
	fmt.Println(l.Count(), l.Base64())
	// Output:
	// 3 dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ=
}
