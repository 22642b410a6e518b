//go:build amd64 && !purego && avx512model

package hashing

import (
	"encoding/binary"
	"math/bits"
)

// This file replaces the AVX-512 assembly kernel with a plain-Go model of
// the contract documented on sha256X16Avx512 (avx512kernel_amd64.go), so
// that the lane feeding, padding and state layout of avx512Group can be
// tested on CPUs without AVX-512:
//
//	go test -tags avx512model ./hashing/
//
// It tests our side of the contract, not the assembly itself; that needs a
// CPU with AVX-512 (TestAVX512 runs there).

const avx512Model = true

func sha256X16Avx512(digests *[512]byte, scratch *[512]byte, table *[512]uint64, mask []uint64, inputs [16][]byte) {
	if len(mask) == 0 {
		panic("avx512 model: kernel called with no rounds (the assembly would run away)")
	}
	for r, m := range mask {
		if m>>16 != 0 {
			panic("avx512 model: mask bit above lane 15")
		}
		for i := range 16 {
			if m&(1<<i) == 0 {
				continue
			}
			if r > 0 && mask[r-1]&(1<<i) == 0 {
				panic("avx512 model: lane active after a gap; the kernel reads round r at offset 64*r")
			}
			var h [8]uint32
			for w := range 8 {
				h[w] = binary.LittleEndian.Uint32(digests[(i+16*w)*4:])
			}
			compress(&h, inputs[i][64*r:64*r+64], table)
			for w := range 8 {
				binary.LittleEndian.PutUint32(digests[(i+16*w)*4:], h[w])
			}
		}
	}
}

// compress is the SHA-256 block function, taking its round constants from
// the kernel's table (so the table is checked too).
func compress(h *[8]uint32, p []byte, table *[512]uint64) {
	var w [64]uint32
	for i := range 16 {
		w[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	for i := 16; i < 64; i++ {
		s0 := bits.RotateLeft32(w[i-15], -7) ^ bits.RotateLeft32(w[i-15], -18) ^ w[i-15]>>3
		s1 := bits.RotateLeft32(w[i-2], -17) ^ bits.RotateLeft32(w[i-2], -19) ^ w[i-2]>>10
		w[i] = w[i-16] + s0 + w[i-7] + s1
	}
	a, b, c, d, e, f, g, hh := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
	for i := range 64 {
		k := uint32(table[i*8])
		if uint64(k)<<32|uint64(k) != table[i*8+7] {
			panic("avx512 model: table row is not one constant repeated")
		}
		s1 := bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)
		ch := e&f ^ ^e&g
		t1 := hh + s1 + ch + k + w[i]
		s0 := bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)
		maj := a&b ^ a&c ^ b&c
		t2 := s0 + maj
		hh, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	h[0] += a
	h[1] += b
	h[2] += c
	h[3] += d
	h[4] += e
	h[5] += f
	h[6] += g
	h[7] += hh
}
