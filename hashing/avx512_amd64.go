//go:build amd64 && !purego

package hashing

import (
	"encoding/binary"
)

// avx512K is the kernel's constant table: each SHA-256 round constant as two
// copies in a uint64, 8 such words (16 lanes) per round.
var avx512K = func() (t [512]uint64) {
	for r, k := range sha256K {
		for j := 0; j < 8; j++ {
			t[r*8+j] = uint64(k)<<32 | uint64(k)
		}
	}
	return t
}()

var sha256K = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

var sha256IV = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

// avx512MinLanes is the smallest group worth a 16-lane pass; smaller groups
// go to crypto/sha256. It is a guess (a 16-lane pass costs the same however
// many lanes are used, and one AVX-512 lane is roughly a quarter of a SHA-NI
// stream); it could not be measured on the reference machine, which has no
// AVX-512.
const avx512MinLanes = 4

// avx512Chunk is how many 64-byte rounds one kernel call runs at most, so
// that the mask fits in a small stack array instead of a per-call slice.
const avx512Chunk = 128

func avx512Batch(dst [][Size]byte, blocks [][]byte) {
	for len(blocks) > 0 {
		n := min(16, len(blocks))
		if n < avx512MinLanes {
			stdlibBatch(dst[:n], blocks[:n])
		} else {
			avx512Group(dst[:n], blocks[:n])
		}
		dst, blocks = dst[n:], blocks[n:]
	}
}

// avx512Group hashes up to 16 messages, one per lane: first their whole
// 64-byte blocks, in calls of at most avx512Chunk rounds, then each lane's
// padded tail (one or two blocks) in a last call.
func avx512Group(dst [][Size]byte, msgs [][]byte) {
	var state, scratch [512]byte
	for i := range 16 {
		for w, v := range sha256IV {
			binary.LittleEndian.PutUint32(state[(i+16*w)*4:], v)
		}
	}

	var mask [avx512Chunk]uint64
	var done [16]int
	for {
		var in [16][]byte
		rounds := 0
		for i, m := range msgs {
			rest := len(m)&^(BlockSize-1) - done[i]
			if rest == 0 {
				continue
			}
			rest = min(rest, avx512Chunk*BlockSize)
			in[i] = m[done[i] : done[i]+rest]
			done[i] += rest
			r := rest / BlockSize
			for k := range r {
				mask[k] |= 1 << i
			}
			rounds = max(rounds, r)
		}
		if rounds == 0 {
			break
		}
		sha256X16Avx512(&state, &scratch, &avx512K, mask[:rounds], in)
		clear(mask[:rounds])
	}

	var tails [16][2 * BlockSize]byte
	var in [16][]byte
	rounds := 0
	for i, m := range msgs {
		t := tails[i][:]
		rest := m[len(m)&^(BlockSize-1):]
		copy(t, rest)
		t[len(rest)] = 0x80
		n := BlockSize
		if len(rest) >= BlockSize-8 {
			n = 2 * BlockSize
		}
		binary.BigEndian.PutUint64(t[n-8:], uint64(len(m))<<3)
		in[i] = t[:n]
		for k := range n / BlockSize {
			mask[k] |= 1 << i
		}
		rounds = max(rounds, n/BlockSize)
	}
	sha256X16Avx512(&state, &scratch, &avx512K, mask[:rounds], in)

	for i := range msgs {
		for w := range 8 {
			binary.BigEndian.PutUint32(dst[i][4*w:], binary.LittleEndian.Uint32(state[(i+16*w)*4:]))
		}
	}
}
