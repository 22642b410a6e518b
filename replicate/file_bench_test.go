package replicate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// sink.File is the engine's syncing, fresh-aware file target.
var (
	_ Syncer        = (*sink.File)(nil)
	_ UnwrittenZero = (*sink.File)(nil)
)

// fileSyncCounter is a sink.File that counts the engine's Sync calls.
type fileSyncCounter struct {
	*sink.File
	syncs atomic.Int64
}

func (f *fileSyncCounter) Sync(ctx context.Context) error {
	f.syncs.Add(1)
	return f.File.Sync(ctx)
}

// fileNoSync forwards every capability of a sink.File except Sync, so the
// engine writes the journal without syncing the target first.
type fileNoSync struct{ f *sink.File }

func (n fileNoSync) Geometry() blockdiff.Geometry { return n.f.Geometry() }
func (n fileNoSync) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	return n.f.WriteBlock(ctx, i, b, d)
}
func (n fileNoSync) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	return n.f.Commit(ctx, m)
}
func (n fileNoSync) Close() error { return n.f.Close() }
func (n fileNoSync) ReadBlock(ctx context.Context, i int64, b []byte) (int, error) {
	return n.f.ReadBlock(ctx, i, b)
}
func (n fileNoSync) ZeroBlocks(ctx context.Context, e blockdiff.Extent) error {
	return n.f.ZeroBlocks(ctx, e)
}
func (n fileNoSync) CopyBlock(ctx context.Context, dst, src int64) error {
	return n.f.CopyBlock(ctx, dst, src)
}
func (n fileNoSync) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	return n.f.Extents(ctx, fn)
}
func (n fileNoSync) Path() string { return n.f.Path() }

// TestFileSinkJournalSync: a real file target with a journal is synced
// by the engine before the journal, and the copy completes.
func TestFileSinkJournalSync(t *testing.T) {
	dir := t.TempDir()
	srcPath, dstPath := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	if err := os.WriteFile(srcPath, newData, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: testBS})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := sink.OpenFile(dstPath, src.Geometry(), sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.UnwrittenZero() {
		t.Fatalf("UnwrittenZero of a new target: got false, want true")
	}
	dst := &fileSyncCounter{File: f}
	jpath := filepath.Join(dir, "run.journal")
	if _, err := Run(context.Background(), src, dst, Options{Journal: jpath, Verify: VerifyAll}); err != nil {
		t.Fatal(err)
	}
	if dst.syncs.Load() == 0 {
		t.Errorf("target synced %d times before the journal, want at least once", dst.syncs.Load())
	}
	got, err := os.ReadFile(dstPath)
	if err != nil || string(got) != string(newData) {
		t.Errorf("target differs from the source (%v)", err)
	}
	if _, err := os.Stat(jpath); !os.IsNotExist(err) {
		t.Errorf("journal after success: got %v, want it removed", err)
	}
}

// BenchmarkRunFile copies a 256 MiB file to a file target (512 KiB
// blocks): "live-target" onto a target whose every 8th block differs (the
// target is hashed, then the changes written); "journal/sync" and
// "journal/nosync" onto a new target with a journal, with and without the
// target fsynced before each journal fsync (every 256 blocks or second).
// The page cache holds both files, so this measures CPU and fsync cost,
// not the disk's read speed.
func BenchmarkRunFile(b *testing.B) {
	const size, bs = 256 << 20, 512 << 10
	dir := b.TempDir()
	srcPath := filepath.Join(dir, "src.img")
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(data)
	if err := os.WriteFile(srcPath, data, 0o600); err != nil {
		b.Fatal(err)
	}
	old := append([]byte(nil), data...)
	for i := 0; i < size/bs; i += 8 {
		old[i*bs] ^= 0xff
	}
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: bs})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	g := src.Geometry()

	run := func(b *testing.B, prepare func(path string), wrap func(*sink.File) blockdiff.Sink, journal bool, check func(*Result)) {
		b.SetBytes(size)
		b.ReportAllocs()
		var cpu int64
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			dst := filepath.Join(dir, fmt.Sprintf("dst%d.img", i))
			jpath := ""
			if journal {
				jpath = dst + ".journal"
			}
			if prepare != nil {
				prepare(dst)
			}
			f, err := sink.OpenFile(dst, g, sink.Options{})
			if err != nil {
				b.Fatal(err)
			}
			c0, _ := processCPU()
			b.StartTimer()
			res, err := Run(context.Background(), src, wrap(f), Options{Journal: jpath})
			b.StopTimer()
			c1, _ := processCPU()
			cpu += c1 - c0
			if err != nil {
				b.Fatal(err)
			}
			check(res)
			f.Close()
			os.Remove(dst)
			b.StartTimer()
		}
		if b.N > 0 {
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		}
	}
	asIs := func(f *sink.File) blockdiff.Sink { return f }
	b.Run("live-target", func(b *testing.B) {
		run(b, func(path string) {
			if err := os.WriteFile(path, old, 0o600); err != nil {
				b.Fatal(err)
			}
		}, asIs, false, func(res *Result) {
			if res.Plan != PlanLiveTarget || res.Stats.Written != g.Blocks()/8 {
				b.Fatalf("plan %s wrote %d blocks, want %s and %d", res.Plan, res.Stats.Written, PlanLiveTarget, g.Blocks()/8)
			}
		})
	})
	full := func(res *Result) {
		if res.Stats.Written != g.Blocks() {
			b.Fatalf("wrote %d blocks, want %d", res.Stats.Written, g.Blocks())
		}
	}
	b.Run("journal/sync", func(b *testing.B) { run(b, nil, asIs, true, full) })
	b.Run("journal/nosync", func(b *testing.B) {
		run(b, nil, func(f *sink.File) blockdiff.Sink { return fileNoSync{f} }, true, full)
	})
}
