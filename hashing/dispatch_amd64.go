//go:build amd64 && !purego

package hashing

import (
	"github.com/klauspost/cpuid/v2"
	simd "github.com/minio/sha256-simd"
)

var (
	hasSHANI  = cpuid.CPU.Supports(cpuid.SHA, cpuid.SSSE3, cpuid.SSE4)
	hasAVX512 = avx512Model || cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512DQ, cpuid.AVX512BW, cpuid.AVX512VL)
)

var impls = [numEngines]*impl{
	Stdlib: stdlibImpl,
	SHANI:  ifCPU(hasSHANI, &impl{sum: simd.Sum256, batch: shaniBatch, new: simd.New}),
	AVX512: ifCPU(hasAVX512, &impl{sum: stdlibImpl.sum, batch: avx512Batch, new: stdlibImpl.new}),
}

func ifCPU(ok bool, i *impl) *impl {
	if ok {
		return i
	}
	return nil
}

func shaniBatch(dst [][Size]byte, blocks [][]byte) {
	for i, b := range blocks {
		dst[i] = simd.Sum256(b)
	}
}

// choose picks the engines the package-level functions use.
//
// Single message: since Go 1.21 crypto/sha256 itself uses SHA-NI on amd64,
// and on this project's reference machine (AMD EPYC, Zen) sha256-simd's SHA-NI
// path measured no faster at 4 KiB to 4 MiB (see BenchmarkSum256), so the
// stdlib is kept: the rule is never to pick an engine slower than
// crypto/sha256.
//
// Batch: the AVX-512 16-lane kernel when the CPU has it, the stdlib
// otherwise.
func choose() (single, batch Engine) {
	single, batch = Stdlib, Stdlib
	if hasAVX512 {
		batch = AVX512
	}
	return single, batch
}
