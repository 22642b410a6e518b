//go:build unix

package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
	"github.com/blockferry/blockferry/source"
)

// hashBenchFile returns the path of a file of size seeded random bytes in
// os.TempDir, creating it on first use and keeping it for later runs, and
// reads it once so that it is page-cached.
func hashBenchFile(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("blockferry-hashbench-%d.img", size))
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		f, err := os.Create(path + ".tmp")
		if err != nil {
			b.Fatal(err)
		}
		r := rand.NewChaCha8([32]byte{'b', 'f'})
		buf := make([]byte, 1<<20)
		for left := size; left > 0; left -= int64(len(buf)) {
			r.Read(buf)
			if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			b.Fatal(err)
		}
	}
	f, err := os.Open(path) // warm-up pass: page-cache the file
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		b.Fatal(err)
	}
	return path
}

// oneCoreRate measures, for a moment on one goroutine, crypto/sha256, the
// default single-message engine and the default batch call on 512 KiB
// blocks, and returns the best rate in bytes per second.
func oneCoreRate() float64 {
	blks := [][]byte{make([]byte, 512<<10), make([]byte, 512<<10)}
	rand.NewChaCha8([32]byte{1}).Read(blks[0])
	rand.NewChaCha8([32]byte{2}).Read(blks[1])
	dst := make([][32]byte, 2)
	best := 0.0
	for _, f := range []func(){
		func() { sha256.Sum256(blks[0]); sha256.Sum256(blks[1]) },
		func() { hashing.Sum256(blks[0]); hashing.Sum256(blks[1]) },
		func() { hashing.SumBatch(dst, blks) },
	} {
		start, n := time.Now(), 0
		for time.Since(start) < 200*time.Millisecond {
			f()
			n++
		}
		best = max(best, float64(n*2*len(blks[0]))/time.Since(start).Seconds())
	}
	return best
}

// processCPU returns the CPU time (user+system) this process has used, in
// seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkHashFile hashes an image file end to end through
// blockdiff.HashSource over source.OpenFile, with one hashing goroutine and
// with GOMAXPROCS. The file size comes from BLOCKFERRY_BENCH_SIZE (default
// 1GiB). Besides MB/s it reports x-one-core: the rate divided by the best
// one-core SHA-256 rate on 512 KiB blocks (the batch call included),
// measured just before (the ideal
// on N cores is N), and MB/cpu-s, bytes hashed per second of the process's
// CPU time (which, unlike MB/s, does not drop when other work shares the
// machine).
//
//	BLOCKFERRY_BENCH_SIZE=4GiB go test -run XXX -bench HashFile -count 5 ./bench
func BenchmarkHashFile(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("BLOCKFERRY_BENCH_SIZE"); s != "" {
		n, err := ParseSize(s)
		if err != nil {
			b.Fatalf("BLOCKFERRY_BENCH_SIZE: %v", err)
		}
		size = n
	}
	path := hashBenchFile(b, size)
	one := oneCoreRate()
	for _, conc := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("%s/conc=%d", FormatSize(size), conc), func(b *testing.B) {
			src, err := source.OpenFile(path, source.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			b.SetBytes(size)
			b.ReportAllocs()
			var m *blockdiff.Manifest
			cpu0 := processCPU()
			for b.Loop() {
				m, err = blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{Concurrency: conc})
				if err != nil {
					b.Fatal(err)
				}
			}
			if data, _, _ := m.Counts(); data != m.Len() {
				b.Fatalf("got %d data blocks of %d, want all (random file)", data, m.Len())
			}
			rate := float64(size) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate/one, "x-one-core")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(size)*float64(b.N)/cpu/1e6, "MB/cpu-s")
			}
		})
	}
}
