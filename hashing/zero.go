package hashing

import (
	"bytes"
	"crypto/sha256"
	"math/bits"
	"sync"
	"sync/atomic"
)

// zeroPage is a static page of zeros that IsZero compares against and
// ZeroDigest hashes from, so neither allocates.
var zeroPage [16 << 10]byte

// IsZero reports whether every byte of b is zero. An empty b is zero.
//
// It compares b with a static zero page in chunks (bytes.Equal is the
// runtime's vectorised memequal), and first checks the first and last
// bytes so that typical data blocks return at once.
func IsZero(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] != 0 || b[len(b)-1] != 0 {
		return false
	}
	for len(b) > len(zeroPage) {
		if !bytes.Equal(b[:len(zeroPage)], zeroPage[:]) {
			return false
		}
		b = b[len(zeroPage):]
	}
	return bytes.Equal(b, zeroPage[:len(b)])
}

// Zero digests of the power-of-two lengths from 4 KiB (1<<12) to 16 MiB
// (1<<24), the block sizes blockdiff allows, are kept in a fixed table read
// with one atomic load; other lengths (short last blocks) go to a sync.Map.
const (
	zeroMinShift = 12
	zeroMaxShift = 24
)

var (
	zeroPow2  [zeroMaxShift - zeroMinShift + 1]atomic.Pointer[[Size]byte]
	zeroOther sync.Map // int -> [Size]byte
)

// ZeroDigest returns the SHA-256 of n zero bytes (n < 0 counts as 0). Each
// length is hashed once and then remembered; for the block sizes blockdiff
// allows (powers of two from 4 KiB to 16 MiB) the remembered digest is read
// without a lock. It does not allocate once a length is known.
func ZeroDigest(n int) [Size]byte {
	if n < 0 {
		n = 0
	}
	if n >= 1<<zeroMinShift && n <= 1<<zeroMaxShift && n&(n-1) == 0 {
		p := &zeroPow2[bits.TrailingZeros(uint(n))-zeroMinShift]
		if d := p.Load(); d != nil {
			return *d
		}
		d := hashZeros(n)
		p.Store(&d)
		return d
	}
	if v, ok := zeroOther.Load(n); ok {
		return v.([Size]byte)
	}
	d := hashZeros(n)
	zeroOther.Store(n, d)
	return d
}

// hashZeros hashes n zero bytes without allocating n bytes.
func hashZeros(n int) [Size]byte {
	h := sha256.New()
	for n > 0 {
		k := min(n, len(zeroPage))
		h.Write(zeroPage[:k])
		n -= k
	}
	var d [Size]byte
	h.Sum(d[:0])
	return d
}
