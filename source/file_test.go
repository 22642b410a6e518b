package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// writeSparse creates a file of size bytes holding data only at the given
// 4 KiB pages (filled with page+1), leaving everything else a hole.
func writeSparse(t *testing.T, size int64, pages ...int64) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for _, pg := range pages {
		off := pg * 4096
		n := min(4096, size-off)
		b := bytes.Repeat([]byte{byte(pg + 1)}, int(n))
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	return p, want
}

func collectExtents(t *testing.T, x blockdiff.Extenter) []blockdiff.Extent {
	t.Helper()
	var got []blockdiff.Extent
	if err := x.Extents(context.Background(), func(e blockdiff.Extent) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFileExtents(t *testing.T) {
	const page = 4096
	for _, tc := range []struct {
		name  string
		size  int64
		pages []int64
		bs    int
		want  []blockdiff.Extent
	}{
		{"empty", 0, nil, page, nil},
		{"all hole", 64 * page, nil, page, nil},
		{"pages", 64 * page, []int64{0, 1, 5, 63}, page, []blockdiff.Extent{ext(0, 2), ext(5, 1), ext(63, 1)}},
		// 16 KiB blocks: pages 5 and 6 share block 1, page 8 is block 2:
		// adjacent blocks merge into one run.
		{"conservative", 64 * page, []int64{5, 6, 8, 40}, 4 * page, []blockdiff.Extent{ext(1, 2), ext(10, 1)}},
		{"short last block", 10*page + 100, []int64{10}, 4 * page, []blockdiff.Extent{ext(2, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := writeSparse(t, tc.size, tc.pages...)
			f, err := OpenFile(p, Options{BlockSize: tc.bs})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := collectExtents(t, f); !slices.Equal(got, tc.want) {
				t.Fatalf("extents: got %v, want %v", got, tc.want)
			}
			// The device path knows no holes: one extent over everything.
			d, err := openFile(p, Options{BlockSize: tc.bs, forceDevice: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var want []blockdiff.Extent
			if n := d.Geometry().Blocks(); n > 0 {
				want = []blockdiff.Extent{ext(0, n)}
			}
			if got := collectExtents(t, d); !slices.Equal(got, want) {
				t.Fatalf("device extents: got %v, want %v", got, want)
			}
		})
	}
}

func TestFileReadDirect(t *testing.T) {
	const page = 4096
	p, want := writeSparse(t, 9*page+123, 0, 3, 9)
	for _, o := range []Options{{BlockSize: 2 * page}, {BlockSize: 2 * page, Direct: true}, {BlockSize: 2 * page, Direct: true, forceDevice: true}} {
		f, err := openFile(p, o)
		if err != nil {
			t.Fatal(err)
		}
		g := f.Geometry()
		got := make([]byte, 0, g.Size)
		buf := make([]byte, g.BlockSize+1)[1:] // unaligned on purpose
		for i := range g.Blocks() {
			n, err := f.ReadBlock(context.Background(), i, buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("options %+v: content differs", o)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadBlock(context.Background(), 0, buf); !errors.Is(err, blockdiff.ErrClosed) {
			t.Fatalf("read after close: got %v, want ErrClosed", err)
		}
	}
}

func TestFileChanged(t *testing.T) {
	p, _ := writeSparse(t, 8*4096, 1)
	f, err := OpenFile(p, Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Changed(); err != nil {
		t.Fatalf("unchanged: got %v, want nil", err)
	}
	if err := os.Truncate(p, 4*4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Changed(); !errors.Is(err, ErrChanged) {
		t.Fatalf("after truncate: got %v, want ErrChanged", err)
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadBlock(context.Background(), 7, buf); !errors.Is(err, ErrChanged) {
		t.Fatalf("read past new end: got %v, want ErrChanged", err)
	}
	var be *blockdiff.BlockError
	if _, err := f.ReadBlock(context.Background(), 6, buf); !errors.As(err, &be) || be.Index != 6 {
		t.Fatalf("read past new end: got %v, want a BlockError for block 6", err)
	}
	g, err := OpenFile(p, Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := g.Changed(); !errors.Is(err, ErrChanged) {
		t.Fatalf("after touch: got %v, want ErrChanged", err)
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		opts Options
		is   error
	}{
		{"missing", filepath.Join(dir, "nope"), Options{}, blockdiff.ErrNotFound},
		{"bad block size", dir, Options{BlockSize: 1000}, blockdiff.ErrGeometry},
		{"directory", dir, Options{}, nil},
		{"char device", "/dev/null", Options{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := OpenFile(tc.path, tc.opts)
			if err == nil {
				f.Close()
				t.Fatal("got nil error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.path)) {
				t.Fatalf("error %q does not name %s", err, tc.path)
			}
		})
	}
}

func ext(first, count int64) blockdiff.Extent { return blockdiff.Extent{First: first, Count: count} }
