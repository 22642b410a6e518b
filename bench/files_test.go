package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSparseCopyAndSameContent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := Workload{Size: 64 << 20, DataSize: 8 << 20, BlockSize: 1 << 20, Zero: 0.25, Seed: 5}
	src := filepath.Join(dir, "src.img")
	if err := w.WriteFile(ctx, src, V1); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst.img")
	// A stale, larger dst must be fully replaced.
	if err := os.WriteFile(dst, make([]byte, 70<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := SparseCopy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Counts()
	if want := (c.Unique + c.Dup) << 20; n != want {
		t.Errorf("SparseCopy wrote %d bytes, want %d (data blocks only)", n, want)
	}
	if err := SameContent(ctx, src, dst); err != nil {
		t.Errorf("SameContent after copy = %v, want nil", err)
	}
	if got, max := allocated(t, dst), int64(9<<20); got > max {
		t.Errorf("copy occupies %d bytes, want at most %d (holes kept)", got, max)
	}

	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const at = 63<<20 + 17 // inside a hole of src
	if _, err := f.WriteAt([]byte{1}, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var de *DiffError
	if err := SameContent(ctx, src, dst); !errors.As(err, &de) || de.Offset != at {
		t.Errorf("SameContent after a 1-byte change = %v, want a DiffError at %d", err, at)
	}
	if err := os.Truncate(dst, 32<<20); err != nil {
		t.Fatal(err)
	}
	if err := SameContent(ctx, src, dst); !errors.As(err, &de) || de.Offset != 32<<20 {
		t.Errorf("SameContent of a shorter file = %v, want a DiffError at %d", err, 32<<20)
	}
	if err := SameContent(ctx, src, filepath.Join(dir, "missing")); err == nil || errors.As(err, &de) {
		t.Errorf("SameContent with a missing file = %v, want a plain error", err)
	}
}
