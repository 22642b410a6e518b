package hashing

import "crypto/sha256"

// selfTestLens are the message lengths of the known-answer check: the
// padding edges (55, 56, 63, 64, 119, 120), a short block and whole blocks,
// sixteen of them so that a 16-lane engine fills every lane, with pairs of
// equal length so that a 2-way engine takes its paired path.
var selfTestLens = [16]int{0, 1, 55, 56, 63, 64, 119, 120, 1000, 1000, 4096, 4096, 4095, 4095, 2048, 2048}

// passesSelfTest reports whether in's batch call agrees with crypto/sha256 on
// a fixed set of messages. The dispatcher runs it once, at package
// initialisation, before it picks a multi-buffer engine, so that an engine
// whose kernel misbehaves on some CPU (the AVX-512 kernel could not be run
// where this package was written) falls back instead of naming blocks
// wrongly. It hashes about 20 KiB and does not allocate per message.
func passesSelfTest(in *impl) bool {
	if in == nil {
		return false
	}
	var buf [4096 * 2]byte
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	var blocks [16][]byte
	for i, n := range selfTestLens {
		// Messages of equal length get different content.
		off := (i % 2) * 1024
		if n+off > len(buf) {
			off = 0
		}
		blocks[i] = buf[off : off+n]
	}
	var got [16][Size]byte
	in.batch(got[:], blocks[:])
	for i, b := range blocks {
		if got[i] != sha256.Sum256(b) {
			return false
		}
	}
	return true
}
