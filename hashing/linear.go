package hashing

import (
	"crypto/sha256"
	"encoding/base64"
	"hash"
)

// Linear computes the EBS direct APIs' LINEAR aggregate checksum: the
// SHA-256 of the raw 32-byte block digests concatenated in ascending
// block-index order (not of their base64 text), sent base64-encoded in
// CompleteSnapshot's x-amz-Checksum header (docs/ebs-direct-api.md §5.8).
//
// It streams: each digest is fed to the running hash as it is added, so a
// snapshot of any size costs the same few hundred bytes. The zero value is
// ready to use. Add the digest of every block written to the snapshot,
// once per index, in ascending index order; Linear cannot check the order
// because it is not told the indices.
//
// A Linear is not safe for concurrent use.
type Linear struct {
	h hash.Hash
	n int64
}

// Add appends the digest d of the next written block.
func (l *Linear) Add(d [Size]byte) {
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Write(d[:])
	l.n++
}

// Count returns how many digests were added: the x-amz-ChangedBlocksCount
// that goes with the checksum.
func (l *Linear) Count() int64 { return l.n }

// Sum returns the aggregate checksum of the digests added so far. With none
// added it is the SHA-256 of empty input. Adding may continue afterwards.
func (l *Linear) Sum() [Size]byte {
	if l.h == nil {
		return sha256.Sum256(nil)
	}
	var d [Size]byte
	l.h.Sum(d[:0])
	return d
}

// Base64 returns [Linear.Sum] in standard base64 with padding, as the
// x-amz-Checksum header carries it.
func (l *Linear) Base64() string {
	d := l.Sum()
	return base64.StdEncoding.EncodeToString(d[:])
}
