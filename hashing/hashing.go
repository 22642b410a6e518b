package hashing

import (
	"crypto/sha256"
	"sync"
)

// Size is the size of a SHA-256 digest in bytes.
const Size = 32

// Sum256 returns the SHA-256 digest of data.
func Sum256(data []byte) [Size]byte { return sha256.Sum256(data) }

var zeroDigests sync.Map // int -> [Size]byte

// ZeroDigest returns the SHA-256 of n zero bytes, computed once per length.
func ZeroDigest(n int) [Size]byte {
	if v, ok := zeroDigests.Load(n); ok {
		return v.([Size]byte)
	}
	d := sha256.Sum256(make([]byte, n))
	zeroDigests.Store(n, d)
	return d
}
