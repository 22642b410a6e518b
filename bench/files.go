package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/blockferry/blockferry/hashing"
)

// copyChunk is the unit in which [SparseCopy] and [SameContent] move bytes.
const copyChunk = 1 << 20

// Linux lseek whence values for sparse files.
const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// nextData returns the offset of the first data byte of f at or after off,
// or size when the rest of f is a hole. A file system without SEEK_DATA is
// treated as all data.
func nextData(f *os.File, off, size int64) (int64, error) {
	if off >= size {
		return size, nil
	}
	n, err := f.Seek(off, seekData)
	switch {
	case errors.Is(err, syscall.ENXIO):
		return size, nil
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EOPNOTSUPP):
		return off, nil
	case err != nil:
		return 0, fmt.Errorf("bench: seek data in %s at %d: %w", f.Name(), off, err)
	}
	return min(n, size), nil
}

// SparseCopy copies the file src to dst the way `cp --sparse=always` does:
// holes of src are skipped, all-zero 1 MiB chunks become holes, and dst ends
// with the size of src. dst is created or truncated first, so no byte of an
// earlier dst survives (and no reflink is made: the copy owns its blocks).
// It returns the number of bytes written.
func SparseCopy(ctx context.Context, dst, src string) (written int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("bench: copy: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("bench: copy: %w", err)
	}
	size := st.Size()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("bench: copy: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench: copy: close %s: %w", dst, cerr)
		}
	}()
	buf := make([]byte, copyChunk)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		if off, err = nextData(in, off, size); err != nil || off >= size {
			break
		}
		n := int(min(int64(copyChunk), size-off))
		if _, err := in.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return written, fmt.Errorf("bench: copy: read %s at %d: %w", src, off, err)
		}
		if !hashing.IsZero(buf[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return written, fmt.Errorf("bench: copy: write %s at %d: %w", dst, off, err)
			}
			written += int64(n)
		}
		off += int64(n)
	}
	if err != nil {
		return written, err
	}
	if err := out.Truncate(size); err != nil {
		return written, fmt.Errorf("bench: copy: size %s to %d bytes: %w", dst, size, err)
	}
	return written, nil
}

// DiffError says where two files first differ.
type DiffError struct {
	A, B   string
	Offset int64 // first differing byte, or the shorter size when sizes differ
	Reason string
}

func (e *DiffError) Error() string {
	return fmt.Sprintf("bench: %s and %s differ at byte %d: %s", e.A, e.B, e.Offset, e.Reason)
}

// SameContent returns nil when files a and b hold the same bytes, a
// [*DiffError] naming the first difference when they do not, and another
// error when one cannot be read. Ranges that are holes in both files are
// not read, so comparing two sparse 1 TiB files costs only their data.
func SameContent(ctx context.Context, a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return fmt.Errorf("bench: compare: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("bench: compare: %w", err)
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return fmt.Errorf("bench: compare: %w", err)
	}
	sb, err := fb.Stat()
	if err != nil {
		return fmt.Errorf("bench: compare: %w", err)
	}
	if sa.Size() != sb.Size() {
		return &DiffError{A: a, B: b, Offset: min(sa.Size(), sb.Size()),
			Reason: fmt.Sprintf("sizes %d and %d", sa.Size(), sb.Size())}
	}
	size := sa.Size()
	ba, bb := make([]byte, copyChunk), make([]byte, copyChunk)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		da, err := nextData(fa, off, size)
		if err != nil {
			return err
		}
		db, err := nextData(fb, off, size)
		if err != nil {
			return err
		}
		if off = min(da, db); off >= size {
			break
		}
		n := int(min(int64(copyChunk), size-off))
		if _, err := fa.ReadAt(ba[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("bench: compare: read %s at %d: %w", a, off, err)
		}
		if _, err := fb.ReadAt(bb[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("bench: compare: read %s at %d: %w", b, off, err)
		}
		if !bytes.Equal(ba[:n], bb[:n]) {
			k := 0
			for ba[k] == bb[k] {
				k++
			}
			return &DiffError{A: a, B: b, Offset: off + int64(k), Reason: "bytes differ"}
		}
		off += int64(n)
	}
	return nil
}
