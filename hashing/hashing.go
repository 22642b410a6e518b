package hashing

import (
	"crypto/sha256"
	"fmt"
	"hash"
)

// Size is the size of a SHA-256 digest in bytes.
const Size = 32

// BlockSize is the SHA-256 input block size in bytes.
const BlockSize = 64

// Engine names one implementation of SHA-256. Every engine gives results
// identical to crypto/sha256; they differ only in speed. The package-level
// functions ([Sum256], [New], [SumBatch]) use the fastest engine this CPU
// runs, chosen once; engines are exported so that tests and benchmarks can
// hold each one to the others.
type Engine uint8

const (
	// Stdlib is crypto/sha256 from the standard library (which itself uses
	// SHA-NI on amd64 and the SHA2 instructions on arm64 when present).
	Stdlib Engine = iota
	// SHANI is github.com/minio/sha256-simd's Intel SHA extensions path,
	// one message at a time (amd64 with SHA, SSSE3 and SSE4.1).
	SHANI
	// AVX512 is the 16-lane AVX-512 multi-buffer kernel of
	// github.com/minio/sha256-simd, fed directly: up to 16 messages are
	// hashed side by side. Only [Engine.SumBatch] is multi-buffer; its
	// single-message calls use [Stdlib].
	AVX512
	// SHANI2 is a 2-way interleaved SHA-NI kernel of this package
	// (amd64 with SHA, SSSE3, SSE4.1 and AVX): [Engine.SumBatch] hashes
	// two messages of equal length side by side, which keeps the SHA unit
	// busy on CPUs where one stream is latency-bound (AMD Zen). Its
	// single-message calls use [Stdlib].
	SHANI2
	numEngines
)

var engineNames = [numEngines]string{"stdlib", "sha-ni", "avx512", "sha-ni-2way"}

// String returns the engine's short name: "stdlib", "sha-ni", "avx512" or
// "sha-ni-2way".
func (e Engine) String() string {
	if e < numEngines {
		return engineNames[e]
	}
	return fmt.Sprintf("engine(%d)", uint8(e))
}

// Available reports whether this CPU (and this build: see the purego tag)
// can run e.
func (e Engine) Available() bool { return e < numEngines && impls[e] != nil }

// Engines returns the engines this CPU can run, Stdlib first.
func Engines() []Engine {
	var es []Engine
	for e := Engine(0); e < numEngines; e++ {
		if e.Available() {
			es = append(es, e)
		}
	}
	return es
}

// Default returns the engines the package-level functions use: single for
// [Sum256] and [New], batch for [SumBatch].
func Default() (single, batch Engine) { return bestSingle, bestBatch }

// impl is one engine's functions. A nil entry in impls is an engine this
// CPU or build cannot run.
type impl struct {
	sum   func(data []byte) [Size]byte
	batch func(dst [][Size]byte, blocks [][]byte)
	new   func() hash.Hash
}

var stdlibImpl = &impl{
	sum:   sha256.Sum256,
	batch: stdlibBatch,
	new:   sha256.New,
}

func stdlibBatch(dst [][Size]byte, blocks [][]byte) {
	for i, b := range blocks {
		dst[i] = sha256.Sum256(b)
	}
}

// get returns e's implementation, or the stdlib's when e cannot run here.
func (e Engine) get() *impl {
	if e < numEngines && impls[e] != nil {
		return impls[e]
	}
	return stdlibImpl
}

// Sum256 returns the SHA-256 digest of data using engine e. An engine that
// is not [Engine.Available] falls back to crypto/sha256.
func (e Engine) Sum256(data []byte) [Size]byte { return e.get().sum(data) }

// New returns a new hash.Hash computing SHA-256 with engine e. An engine that
// is not [Engine.Available] falls back to crypto/sha256.
func (e Engine) New() hash.Hash { return e.get().new() }

// SumBatch sets dst[i] to the SHA-256 digest of blocks[i] for every i, using
// engine e. Blocks may have any and differing lengths. It panics if
// len(dst) < len(blocks), like an out-of-range slice index. It does not
// allocate. An engine that is not [Engine.Available] falls back to
// crypto/sha256.
func (e Engine) SumBatch(dst [][Size]byte, blocks [][]byte) {
	_ = dst[:len(blocks)]
	e.get().batch(dst, blocks)
}

// Sum256 returns the SHA-256 digest of data, like crypto/sha256.Sum256.
func Sum256(data []byte) [Size]byte { return singleImpl.sum(data) }

// New returns a new hash.Hash computing SHA-256, like crypto/sha256.New.
func New() hash.Hash { return singleImpl.new() }

// SumBatch sets dst[i] to the SHA-256 digest of blocks[i] for every i. It is
// the call to use when several blocks are at hand: a multi-buffer engine
// hashes them side by side. Blocks may have any and differing lengths. It
// panics if len(dst) < len(blocks), like an out-of-range slice index. It
// does not allocate.
func SumBatch(dst [][Size]byte, blocks [][]byte) {
	_ = dst[:len(blocks)]
	batchImpl.batch(dst, blocks)
}

// Chosen once at package initialisation from the CPU's features (see the
// per-arch dispatch files); never changed afterwards.
var (
	bestSingle, bestBatch = choose()
	singleImpl            = bestSingle.get()
	batchImpl             = bestBatch.get()
)

// Lanes returns how many messages e hashes side by side in one
// [Engine.SumBatch] pass: 16 for [AVX512], 2 for [SHANI2], 1 for the others.
func (e Engine) Lanes() int {
	if !e.Available() {
		return 1
	}
	switch e {
	case AVX512:
		return 16
	case SHANI2:
		return 2
	}
	return 1
}

// Lanes returns how many messages [SumBatch] hashes side by side on this
// CPU: 16 with AVX-512, 2 with the 2-way SHA-NI kernel, 1 otherwise. Callers gathering blocks for SumBatch
// should gather at least this many per call to fill the lanes.
func Lanes() int { return bestBatch.Lanes() }
