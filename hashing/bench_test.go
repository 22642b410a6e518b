package hashing_test

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"

	"github.com/blockferry/blockferry/hashing"
)

// loop runs f in a b.Loop on a locked OS thread and, besides the usual
// MB/s (wall clock), reports cpu-MB/s: bytes per second of the thread's own
// CPU time. On a machine shared with other work the wall-clock figure
// includes time the thread was not running; cpu-MB/s does not, so it is
// the figure to compare engines by there.
func loop(b *testing.B, bytes int, f func()) {
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := threadCPU()
	for b.Loop() {
		f()
	}
	if c1, _ := threadCPU(); ok && c1 > c0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/(c1-c0)/1e6, "cpu-MB/s")
	}
}

var benchSizes = []int{4 << 10, 64 << 10, 512 << 10, 4 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkSum256 compares each engine with crypto/sha256 on one message.
func BenchmarkSum256(b *testing.B) {
	for _, n := range benchSizes {
		data := randBytes(1, n)
		want := sha256.Sum256(data)
		b.Run(sizeName(n)+"/crypto-sha256", func(b *testing.B) {
			loop(b, n, func() {
				if sha256.Sum256(data) != want {
					b.Fatal("wrong digest")
				}
			})
		})
		for _, e := range hashing.Engines() {
			b.Run(sizeName(n)+"/"+e.String(), func(b *testing.B) {
				loop(b, n, func() {
					if e.Sum256(data) != want {
						b.Fatal("wrong digest")
					}
				})
			})
		}
		b.Run(sizeName(n)+"/default", func(b *testing.B) {
			loop(b, n, func() {
				if hashing.Sum256(data) != want {
					b.Fatal("wrong digest")
				}
			})
		})
	}
}

// BenchmarkSumBatch hashes 16 blocks per call (one full AVX-512 group),
// beside a crypto/sha256 loop over the same blocks.
func BenchmarkSumBatch(b *testing.B) {
	const count = 16
	for _, n := range benchSizes {
		blocks := make([][]byte, count)
		want := make([][32]byte, count)
		for i := range blocks {
			blocks[i] = randBytes(uint64(i), n)
			want[i] = sha256.Sum256(blocks[i])
		}
		dst := make([][32]byte, count)
		check := func(b *testing.B) {
			if dst[count-1] != want[count-1] || dst[0] != want[0] {
				b.Fatal("wrong digest")
			}
		}
		b.Run(sizeName(n)+"/crypto-sha256", func(b *testing.B) {
			loop(b, n*count, func() {
				for i, blk := range blocks {
					dst[i] = sha256.Sum256(blk)
				}
				check(b)
			})
		})
		for _, e := range hashing.Engines() {
			b.Run(sizeName(n)+"/"+e.String(), func(b *testing.B) {
				loop(b, n*count, func() {
					e.SumBatch(dst, blocks)
					check(b)
				})
			})
		}
		b.Run(sizeName(n)+"/default", func(b *testing.B) {
			loop(b, n*count, func() {
				hashing.SumBatch(dst, blocks)
				check(b)
			})
		})
	}
}

// BenchmarkIsZero measures the zero check on all-zero blocks (the worst
// case: every byte is looked at), beside a plain byte loop.
func BenchmarkIsZero(b *testing.B) {
	for _, n := range benchSizes {
		data := make([]byte, n)
		b.Run(sizeName(n)+"/IsZero", func(b *testing.B) {
			loop(b, n, func() {
				if !hashing.IsZero(data) {
					b.Fatal("IsZero = false on zeros")
				}
			})
		})
		b.Run(sizeName(n)+"/byte-loop", func(b *testing.B) {
			loop(b, n, func() {
				for _, c := range data {
					if c != 0 {
						b.Fatal("non-zero")
					}
				}
			})
		})
	}
}

func BenchmarkZeroDigest(b *testing.B) {
	hashing.ZeroDigest(512 << 10)
	b.ReportAllocs()
	for b.Loop() {
		hashing.ZeroDigest(512 << 10)
	}
}
