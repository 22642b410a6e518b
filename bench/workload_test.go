package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// allocated returns the bytes a file occupies on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

var small = Workload{Size: 8<<20 + 12345, BlockSize: 64 << 10, Zero: 0.3, Dup: 0.1, Change: 0.05, Seed: 1}

func TestWritePairDeterministic(t *testing.T) {
	ctx := context.Background()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	other := small
	other.Seed = 2
	for k, w := range []Workload{small, small, other} {
		if err := w.WritePair(ctx, dirs[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{V1Name, V2Name} {
		a, b, c := fileSum(t, filepath.Join(dirs[0], name)), fileSum(t, filepath.Join(dirs[1], name)), fileSum(t, filepath.Join(dirs[2], name))
		if a != b {
			t.Errorf("%s: seed 1 twice gave sha256 %x and %x, want equal", name, a, b)
		}
		if a == c {
			t.Errorf("%s: seeds 1 and 2 gave the same sha256 %x, want different", name, a)
		}
	}
}

func TestWritePairMatchesSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := small.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	g := small.Geometry()
	buf := make([]byte, g.BlockSize)
	var changed int64
	v1, err := os.ReadFile(filepath.Join(dir, V1Name))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := os.ReadFile(filepath.Join(dir, V2Name))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		ver  Version
		file []byte
	}{{V1, v1}, {V2, v2}} {
		if got, want := int64(len(v.file)), g.Size; got != want {
			t.Fatalf("v%d: size %d, want %d", v.ver, got, want)
		}
		src, err := small.Source(v.ver)
		if err != nil {
			t.Fatal(err)
		}
		for i := range g.Blocks() {
			n, err := src.ReadBlock(ctx, i, buf)
			if err != nil {
				t.Fatal(err)
			}
			off := g.Offset(i)
			if !bytes.Equal(v.file[off:off+int64(n)], buf[:n]) {
				t.Fatalf("v%d block %d: file bytes differ from Source.ReadBlock", v.ver, i)
			}
		}
	}
	for i := range g.Blocks() {
		off, n := g.Offset(i), int64(g.BlockLen(i))
		differ := !bytes.Equal(v1[off:off+n], v2[off:off+n])
		if got, want := differ, small.Changed(i); got != want {
			t.Errorf("block %d: v1 and v2 differ = %v, want Changed = %v", i, got, want)
		}
		if differ {
			changed++
		}
	}
	c := small.Counts()
	if c.Changed != changed {
		t.Errorf("Counts().Changed = %d, want %d blocks that differ", c.Changed, changed)
	}
	if c.Unique+c.Dup+c.Zero+c.Outside != c.Blocks || c.Blocks != g.Blocks() {
		t.Errorf("counts %+v do not add up to %d blocks", c, g.Blocks())
	}
	// Zero blocks are holes: the file occupies about its data only.
	if got, max := allocated(t, filepath.Join(dir, V1Name)), (c.Unique+c.Dup+1)*int64(g.BlockSize); got > max {
		t.Errorf("v1 occupies %d bytes on disk, want at most %d (zero blocks left as holes)", got, max)
	}
}

func TestWorkloadFractions(t *testing.T) {
	w := Workload{Size: 4 << 30, Zero: 0.3, Dup: 0.1, Change: 0.05, Seed: 7}
	c := w.Counts()
	n := float64(c.Blocks)
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"zero", float64(c.Zero) / n, w.Zero},
		{"dup", float64(c.Dup) / n, w.Dup},
		{"change", float64(c.Changed) / n, w.Change},
	} {
		// 8192 blocks: 4 standard deviations of a binomial is under 0.021.
		if math.Abs(f.got-f.want) > 0.021 {
			t.Errorf("%s fraction = %.4f, want %.2f ± 0.021", f.name, f.got, f.want)
		}
	}
}

func TestSparseWorkload(t *testing.T) {
	ctx := context.Background()
	w := Workload{Size: 1 << 30, DataSize: 4 << 20, BlockSize: 64 << 10, Zero: 0.2, Change: 0.2, Seed: 3}
	c := w.Counts()
	if got, want := c.Blocks-c.Outside, int64(64); got != want {
		t.Errorf("blocks in data extents = %d, want %d", got, want)
	}
	src, err := w.Source(V2)
	if err != nil {
		t.Fatal(err)
	}
	var ext []blockdiff.Extent
	if err := src.Extents(ctx, func(e blockdiff.Extent) error { ext = append(ext, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ext) != 64 {
		t.Fatalf("got %d extents, want 64", len(ext))
	}
	for i := range c.Blocks {
		in := false
		for _, e := range ext {
			in = in || (i >= e.First && i < e.End())
		}
		if got := w.Class(i) != Outside; got != in {
			t.Fatalf("block %d: in data = %v, want %v (extents %v)", i, got, in, ext)
		}
	}
	dir := t.TempDir()
	if err := w.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{V1Name, V2Name} {
		if got, max := allocated(t, filepath.Join(dir, name)), int64(w.DataSize+1<<20); got > max {
			t.Errorf("%s occupies %d bytes of its 1 GiB, want at most %d", name, got, max)
		}
	}
	m, err := w.Manifest(ctx, V1)
	if err != nil {
		t.Fatal(err)
	}
	d, z, h := m.Counts()
	if d != c.Unique+c.Dup || z != c.Zero || h != c.Outside {
		t.Errorf("manifest counts data %d zero %d hole %d, want %d %d %d", d, z, h, c.Unique+c.Dup, c.Zero, c.Outside)
	}
}

func TestWorkloadValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    Workload
	}{
		{"no size", Workload{}},
		{"odd block", Workload{Size: 1 << 20, BlockSize: 5000}},
		{"negative fraction", Workload{Size: 1 << 20, Zero: -0.1}},
		{"fractions over 1", Workload{Size: 1 << 20, Zero: 0.7, Dup: 0.4}},
		{"data over size", Workload{Size: 1 << 20, DataSize: 2 << 20}},
		{"NaN change", Workload{Size: 1 << 20, Change: math.NaN()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.w.Validate()
			if !errors.Is(err, blockdiff.ErrGeometry) {
				t.Errorf("Validate() = %v, want an error wrapping ErrGeometry", err)
			}
		})
	}
	if err := small.Validate(); err != nil {
		t.Errorf("Validate() of a good workload = %v, want nil", err)
	}
}

func TestSourceErrors(t *testing.T) {
	src, err := small.Source(V1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, small.BlockSize)
	if _, err := src.ReadBlock(context.Background(), src.Geometry().Blocks(), buf); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Errorf("ReadBlock past the end = %v, want ErrOutOfRange", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.ReadBlock(ctx, 0, buf); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadBlock with a cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := small.Source(3); err == nil {
		t.Error("Source(3) = nil error, want an error")
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4GiB", 4 << 30}, {"512KiB", 512 << 10}, {"1TiB", 1 << 40}, {"2G", 2 << 30},
		{"1048576", 1 << 20}, {"1.5GiB", 3 << 29}, {"10MB", 10e6}, {"0", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "x1", "9999999TiB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, nil; want an error", bad, got)
		}
	}
}

func TestInfoRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := small.WriteInfo(dir); err != nil {
		t.Fatal(err)
	}
	in, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Workload != small || in.Counts != small.Counts() {
		t.Errorf("ReadInfo = %+v, want workload %+v counts %+v", in, small, small.Counts())
	}
	if _, err := ReadInfo(t.TempDir()); err == nil {
		t.Error("ReadInfo of an empty directory = nil error, want an error")
	}
}
