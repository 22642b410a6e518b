//go:build amd64 && !purego

package hashing

import (
	"github.com/klauspost/cpuid/v2"
	simd "github.com/minio/sha256-simd"
)

var (
	hasSHANI  = cpuid.CPU.Supports(cpuid.SHA, cpuid.SSSE3, cpuid.SSE4)
	hasSHANI2 = hasSHANI && cpuid.CPU.Supports(cpuid.AVX)
	hasAVX512 = avx512Model || cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512DQ, cpuid.AVX512BW, cpuid.AVX512VL)
)

var impls = [numEngines]*impl{
	Stdlib: stdlibImpl,
	SHANI:  ifCPU(hasSHANI, &impl{sum: simd.Sum256, batch: shaniBatch, new: simd.New}),
	AVX512: ifCPU(hasAVX512, &impl{sum: stdlibImpl.sum, batch: avx512Batch, new: stdlibImpl.new}),
	SHANI2: ifCPU(hasSHANI2, &impl{sum: stdlibImpl.sum, batch: shani2Batch, new: stdlibImpl.new}),
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

// choose picks the engines the package-level functions use. The rule is
// never to pick an engine measured slower than crypto/sha256.
//
// Single message: crypto/sha256 itself uses SHA-NI on amd64, and on the
// reference machine (AMD EPYC, Zen) sha256-simd's SHA-NI path measured
// within a few per cent of it (BenchmarkSum256, cpu-MB/s), so the stdlib is
// kept.
//
// Batch: the AVX-512 16-lane kernel when the CPU has it (not measured: the
// reference machine has no AVX-512); otherwise the 2-way SHA-NI kernel,
// which measured about 1.7x crypto/sha256 on Zen (two independent streams
// never issue fewer SHA instructions per cycle than one); otherwise the
// stdlib. A multi-buffer engine is only picked after it passes a
// known-answer check against crypto/sha256 ([passesSelfTest]).
func choose() (single, batch Engine) {
	single, batch = Stdlib, Stdlib
	switch {
	case hasAVX512 && passesSelfTest(impls[AVX512]):
		batch = AVX512
	case hasSHANI2 && passesSelfTest(impls[SHANI2]):
		batch = SHANI2
	}
	return single, batch
}
