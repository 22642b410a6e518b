package replicate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// BenchmarkRun measures a full copy memory → memory (read, zero check,
// hash, write, manifest) against a stdlib loop doing the same work on one
// goroutine with crypto/sha256 and copy. Besides wall time it reports
// cpu-ns/op, the process CPU time per run, which a shared machine
// disturbs far less.
func BenchmarkRun(b *testing.B) {
	const size = 32 << 20
	data := volumeBS(11, size)
	for _, bs := range []int{64 << 10, 512 << 10} {
		src, err := source.NewMemory(data, bs)
		if err != nil {
			b.Fatal(err)
		}
		g := src.Geometry()
		dst, err := sink.NewMemory(g)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("bs=%dK/replicate", bs>>10), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				res, err := Run(context.Background(), src, noCommit{dst}, Options{Base: nil, Zero: ZeroAlways})
				if err != nil || res.Stats.Written != g.Blocks() {
					b.Fatalf("run: %v, written %d", err, res.Stats.Written)
				}
			}
			cpu.report(b)
		})
		b.Run(fmt.Sprintf("bs=%dK/stdlib", bs>>10), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			buf := make([]byte, bs)
			out := make([]byte, size)
			sums := make([][32]byte, g.Blocks())
			cpu := startCPU()
			for b.Loop() {
				for i := range g.Blocks() {
					n, err := src.ReadBlock(context.Background(), i, buf)
					if err != nil {
						b.Fatal(err)
					}
					sums[i] = sha256.Sum256(buf[:n])
					copy(out[g.Offset(i):], buf[:n])
				}
			}
			cpu.report(b)
			if sums[0] == ([32]byte{}) {
				b.Fatal("no digest")
			}
		})
	}
}

// noCommit hides read-back (so the plan is a full copy) and Commit (so the
// sink can be reused across iterations).
type noCommit struct{ m *sink.Memory }

func (n noCommit) Geometry() blockdiff.Geometry { return n.m.Geometry() }
func (n noCommit) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	return n.m.WriteBlock(ctx, i, b, d)
}
func (noCommit) Commit(context.Context, *blockdiff.Manifest) error { return nil }
func (noCommit) Close() error                                      { return nil }

func volumeBS(seed uint64, size int) []byte {
	return volume(seed, size/testBS, nil)
}

// cpuClock measures the process CPU time of a benchmark loop.
type cpuClock struct {
	start int64
	ok    bool
}

func startCPU() cpuClock {
	t, ok := processCPU()
	return cpuClock{t, ok}
}

// report adds cpu-ns/op when the OS tells CPU time.
func (c cpuClock) report(b *testing.B) {
	if t, ok := processCPU(); ok && c.ok && b.N > 0 {
		b.ReportMetric(float64(t-c.start)/float64(b.N), "cpu-ns/op")
	}
}
