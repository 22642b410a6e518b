//go:build amd64 && !purego && !avx512model

package hashing

import (
	_ "unsafe" // for go:linkname

	_ "github.com/minio/sha256-simd" // defines sha256X16Avx512
)

// sha256X16Avx512 is sha256-simd's unexported 16-lane AVX-512 kernel
// (sha256blockAvx512_amd64.s), pulled by linkname so that the lanes are fed
// directly instead of through its channel-based Avx512Server.
//
// Contract, read from the library's Avx512Server and its assembly:
//   - digests holds the 16 lanes' states transposed: word w (0..7) of lane
//     i is a native (little-endian) uint32 at byte (i + 16*w)*4. It is read
//     at entry and written back at exit.
//   - mask has one entry per 64-byte round, and len(mask) >= 1 rounds run;
//     bit i of mask[r] says lane i takes part in round r. Inactive lanes
//     keep their state. Every lane reads round r at offset 64*r of its own
//     input, so lanes must be active in a prefix of the rounds.
//   - inputs are read only where the mask says so; their lengths are
//     ignored.
//   - table is the 64 round constants, each repeated for the 16 lanes.
//
//go:linkname sha256X16Avx512 github.com/minio/sha256-simd.sha256X16Avx512
//go:noescape
func sha256X16Avx512(digests *[512]byte, scratch *[512]byte, table *[512]uint64, mask []uint64, inputs [16][]byte)

// avx512Model is true only in the avx512model test build.
const avx512Model = false
