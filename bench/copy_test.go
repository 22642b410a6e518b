package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// loadV1 returns an in-memory sink holding version 1 of w.
func loadV1(ctx context.Context, tb testing.TB, w Workload) *sink.Memory {
	tb.Helper()
	g := w.Geometry()
	m, err := sink.NewMemory(g)
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		n, k := w.Block(V1, i, buf)
		if k != blockdiff.Data {
			continue
		}
		if err := m.WriteBlock(ctx, i, buf[:n], blockdiff.Digest{}); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

// TestCopyOnlyChangedBlocks replicates an 8 MiB pair written by WritePair
// (v2.img read with source.OpenFile) onto a target holding v1, with and
// without a base manifest, and checks the target ends byte-identical to
// v2.img with exactly the changed blocks written.
func TestCopyOnlyChangedBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := small
	if err := w.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, V2Name))
	if err != nil {
		t.Fatal(err)
	}
	base, err := w.Manifest(ctx, V1)
	if err != nil {
		t.Fatal(err)
	}
	changed := w.Counts().Changed
	if changed == 0 {
		t.Fatal("workload has no changed blocks; the test would prove nothing")
	}
	for _, tc := range []struct {
		name     string
		base     *blockdiff.Manifest
		wantPlan replicate.PlanKind
	}{
		{"memory/live target", nil, replicate.PlanLiveTarget},
		{"memory/base manifest", base, replicate.PlanHashBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := source.OpenFile(filepath.Join(dir, V2Name), source.Options{BlockSize: w.BlockSize})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dst := loadV1(ctx, t, w)
			before := dst.Writes()
			res, err := replicate.Run(ctx, src, dst, replicate.Options{Base: tc.base})
			if err != nil {
				t.Fatal(err)
			}
			if res.Plan != tc.wantPlan {
				t.Errorf("plan = %s, want %s", res.Plan, tc.wantPlan)
			}
			if got := dst.Writes() - before; got != changed {
				t.Errorf("sink received %d WriteBlock calls, want %d (the changed blocks only)", got, changed)
			}
			if got := res.Stats.Written; got != changed {
				t.Errorf("Stats.Written = %d, want %d", got, changed)
			}
			if got := dst.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("target differs from v2.img (%d bytes vs %d)", len(got), len(want))
			}
			v2m, err := w.Manifest(ctx, V2)
			if err != nil {
				t.Fatal(err)
			}
			if res.Manifest == nil || !res.Manifest.Equal(v2m) {
				t.Error("Result.Manifest does not equal the manifest of v2")
			}
		})
	}
}

// TestCopyFileToFile is the same check with real files on both sides: the
// target is a sparse copy of v1.img opened with sink.OpenFile, as copybench
// does it.
func TestCopyFileToFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := small
	if err := w.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	base, err := w.Manifest(ctx, V1)
	if err != nil {
		t.Fatal(err)
	}
	changed := w.Counts().Changed
	for _, tc := range []struct {
		name     string
		base     *blockdiff.Manifest
		wantPlan replicate.PlanKind
	}{
		{"live target", nil, replicate.PlanLiveTarget},
		{"base manifest", base, replicate.PlanHashBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(dir, "target.img")
			if _, err := SparseCopy(ctx, target, filepath.Join(dir, V1Name)); err != nil {
				t.Fatal(err)
			}
			if err := SameContent(ctx, filepath.Join(dir, V2Name), target); err == nil {
				t.Fatal("target equals v2.img before the copy; the test would prove nothing")
			}
			src, err := source.OpenFile(filepath.Join(dir, V2Name), source.Options{BlockSize: w.BlockSize})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dst, err := sink.OpenFile(target, src.Geometry(), sink.Options{ManifestPath: target + ".bfm"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := replicate.Run(ctx, src, dst, replicate.Options{Base: tc.base})
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Plan != tc.wantPlan {
				t.Errorf("plan = %s, want %s", res.Plan, tc.wantPlan)
			}
			if got := res.Stats.Written; got != changed {
				t.Errorf("Stats.Written = %d, want %d (the changed blocks only)", got, changed)
			}
			if err := SameContent(ctx, filepath.Join(dir, V2Name), target); err != nil {
				t.Error(err)
			}
			m, err := blockdiff.ReadManifestFile(target + ".bfm")
			if err != nil {
				t.Fatal(err)
			}
			if !m.Equal(res.Manifest) {
				t.Error("saved manifest differs from Result.Manifest")
			}
		})
	}
}

// BenchmarkCopyIncremental replicates v2.img of a 64 MiB pair onto
// target.img, reset to a sparse copy of v1.img before each iteration (reset
// not timed), per block size: blockferry with a base manifest, blockferry
// against the live target, and the stdlib baseline that rewrites every
// block with pwrite and fsyncs (the full copy an incremental tool must
// beat; blockferry's commit fsyncs too). SetBytes is the volume size, so
// MB/s is volume bytes brought up to date per second.
func BenchmarkCopyIncremental(b *testing.B) {
	ctx := context.Background()
	for _, bs := range []int{64 << 10, 512 << 10} {
		w := Workload{Size: 64 << 20, BlockSize: bs, Zero: 0.3, Dup: 0.1, Change: 0.05, Seed: 1}
		dir := b.TempDir()
		if err := w.WritePair(ctx, dir); err != nil {
			b.Fatal(err)
		}
		base, err := w.Manifest(ctx, V1)
		if err != nil {
			b.Fatal(err)
		}
		v1, v2 := filepath.Join(dir, V1Name), filepath.Join(dir, V2Name)
		target := filepath.Join(dir, "target.img")
		reset := func(b *testing.B) {
			b.StopTimer()
			if _, err := SparseCopy(ctx, target, v1); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		bsName := fmt.Sprintf("%dKiB", bs>>10)
		for _, m := range []struct {
			name string
			base *blockdiff.Manifest
		}{{"blockferry-base", base}, {"blockferry-live", nil}} {
			b.Run(fmt.Sprintf("block=%s/%s", bsName, m.name), func(b *testing.B) {
				b.SetBytes(w.Size)
				b.ReportAllocs()
				src, err := source.OpenFile(v2, source.Options{BlockSize: bs})
				if err != nil {
					b.Fatal(err)
				}
				defer src.Close()
				for b.Loop() {
					reset(b)
					dst, err := sink.OpenFile(target, src.Geometry(), sink.Options{})
					if err != nil {
						b.Fatal(err)
					}
					res, err := replicate.Run(ctx, src, dst, replicate.Options{Base: m.base})
					if cerr := dst.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						b.Fatal(err)
					}
					if res.Stats.Written != w.Counts().Changed {
						b.Fatalf("wrote %d blocks, want %d", res.Stats.Written, w.Counts().Changed)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("block=%s/stdlib-full-copy", bsName), func(b *testing.B) {
			b.SetBytes(w.Size)
			b.ReportAllocs()
			f, err := os.Open(v2)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, bs)
			g := w.Geometry()
			for b.Loop() {
				reset(b)
				out, err := os.OpenFile(target, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				for i := range g.Blocks() {
					n, err := f.ReadAt(buf[:g.BlockLen(i)], g.Offset(i))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := out.WriteAt(buf[:n], g.Offset(i)); err != nil {
						b.Fatal(err)
					}
				}
				if err := out.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := out.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate measures the workload generator itself, per block size.
func BenchmarkGenerate(b *testing.B) {
	for _, bs := range []int{64 << 10, 512 << 10} {
		b.Run(fmt.Sprintf("block=%dKiB", bs>>10), func(b *testing.B) {
			w := Workload{Size: 1 << 30, BlockSize: bs, Seed: 1}
			buf := make([]byte, bs)
			b.SetBytes(int64(bs))
			b.ReportAllocs()
			var i int64
			for b.Loop() {
				if _, k := w.Block(V1, i%w.Geometry().Blocks(), buf); k != blockdiff.Data {
					b.Fatalf("block %d is %s, want data", i, k)
				}
				i++
			}
		})
	}
}
