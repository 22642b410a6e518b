package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/blockferry/blockferry/blockdiff"
)

// ErrChanged is wrapped by [File.Changed] and by ReadBlock when the file or
// device was resized or modified after it was opened, so a copy taken from
// it would not be one consistent version.
var ErrChanged = errors.New("source changed while open")

// DirectAlign is the alignment of offsets, lengths and buffer addresses used
// for O_DIRECT, here and in package sink. 4096 satisfies every logical block
// size Linux devices use.
const DirectAlign = 4096

const directAlign = DirectAlign

// Options configures [OpenFile]. The zero value works.
type Options struct {
	// BlockSize is the block size in bytes. Zero means
	// [blockdiff.DefaultBlockSize] (512 KiB); any other value must be a
	// power of two from 4 KiB to 16 MiB.
	BlockSize int

	// Direct opens the file with O_DIRECT, bypassing the page cache, so a
	// large read does not evict other data. Reads then go through internal
	// 4096-byte-aligned buffers (callers' buffers may be unaligned), one
	// per concurrent read. Default false. Linux only; some filesystems
	// (tmpfs) refuse it and OpenFile returns their error.
	Direct bool

	// forceDevice opens a regular file through the block device code path
	// (size by ioctl falling back to seek, no holes). For tests.
	forceDevice bool
}

// File is a [blockdiff.Source] reading a regular file or a block device with
// pread. It also implements [blockdiff.Extenter]: for a regular file the
// extents come from SEEK_DATA/SEEK_HOLE, so holes are never read; a device
// reports one extent covering the whole volume.
//
// The size is fixed at open. Use [File.Changed] before and after a copy to
// detect a file that was modified meanwhile.
//
// File is safe for concurrent use.
type File struct {
	f      *os.File
	path   string
	geom   blockdiff.Geometry
	device bool
	direct bool
	mtime  time.Time // zero for devices
	bufs   sync.Pool // *[]byte aligned bounce buffers of geom.BlockSize, Direct only
	closed atomic.Bool
}

var (
	_ blockdiff.Source   = (*File)(nil)
	_ blockdiff.Extenter = (*File)(nil)
)

// OpenFile opens path, a regular file or a block device, for reading. The
// volume size is the file's size (a device's size by ioctl BLKGETSIZE64) at
// the time of the call. Directories, character devices, pipes and sockets
// are refused. Errors name the path; a missing file wraps both
// [fs.ErrNotExist] and [blockdiff.ErrNotFound].
func OpenFile(path string, opts Options) (*File, error) {
	opts.forceDevice = false
	return openFile(path, opts)
}

func openFile(path string, opts Options) (*File, error) {
	bs := opts.BlockSize
	if bs == 0 {
		bs = blockdiff.DefaultBlockSize
	}
	if err := blockdiff.ValidateBlockSize(bs); err != nil {
		return nil, fmt.Errorf("source: open %s: %w", path, err)
	}
	flags := os.O_RDONLY
	if opts.Direct {
		if oDirect == 0 {
			return nil, fmt.Errorf("source: open %s: Options.Direct (O_DIRECT) is not supported on this operating system", path)
		}
		flags |= oDirect
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source: %w: %w", err, blockdiff.ErrNotFound)
		}
		if opts.Direct && errors.Is(err, errInval) {
			return nil, fmt.Errorf("source: %w (the filesystem refuses O_DIRECT; open without Options.Direct)", err)
		}
		return nil, fmt.Errorf("source: %w", err)
	}
	s, err := newFile(f, path, bs, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func newFile(f *os.File, path string, bs int, opts Options) (*File, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &File{f: f, path: path, direct: opts.Direct}
	var size int64
	switch m := fi.Mode(); {
	case m.IsRegular() && !opts.forceDevice:
		size = fi.Size()
		s.mtime = fi.ModTime()
	case m.IsRegular() || (m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0):
		s.device = true
		size, err = DeviceSize(f)
		if err != nil {
			return nil, fmt.Errorf("source: size of device %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("source: open %s: %s is neither a regular file nor a block device", path, m.Type())
	}
	s.geom = blockdiff.Geometry{Size: size, BlockSize: bs}
	if err := s.geom.Validate(); err != nil {
		return nil, fmt.Errorf("source: open %s: %w", path, err)
	}
	if s.direct {
		s.bufs.New = func() any { b := AlignedBuffer(bs); return &b }
	}
	return s, nil
}

// Geometry returns the volume's geometry, fixed at open.
func (s *File) Geometry() blockdiff.Geometry { return s.geom }

// Path returns the path the file was opened with.
func (s *File) Path() string { return s.path }

// IsDevice reports whether the file is read as a block device.
func (s *File) IsDevice() bool { return s.device }

// ReadBlock reads block index into buf and returns its length. See
// [blockdiff.Source]. A file that became shorter than its size at open gives
// an error wrapping [ErrChanged] and [io.ErrUnexpectedEOF]; after Close the
// error wraps [blockdiff.ErrClosed].
func (s *File) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := s.geom.BlockLen(index)
	if n == 0 {
		return 0, outOfRange(s.path, s.geom, index)
	}
	if len(buf) < n {
		return 0, shortBuffer(s.path, index, len(buf), n)
	}
	if s.closed.Load() {
		return 0, s.readErr(index, blockdiff.ErrClosed)
	}
	off := s.geom.Offset(index)
	var err error
	if !s.direct {
		_, err = s.f.ReadAt(buf[:n], off)
	} else {
		err = s.readDirect(buf[:n], off)
	}
	if err != nil {
		return 0, s.readErr(index, err)
	}
	return n, nil
}

// readDirect reads len(dst) bytes at off (a multiple of directAlign) with
// O_DIRECT, through an aligned bounce buffer unless dst is itself aligned.
func (s *File) readDirect(dst []byte, off int64) error {
	want := roundUp(len(dst), directAlign)
	if len(dst) == want && isAligned(dst) {
		_, err := s.f.ReadAt(dst, off)
		return err
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:want]
	// At the end of the volume the aligned read is longer than the data;
	// io.EOF then only matters if fewer than len(dst) bytes arrived.
	got, err := s.f.ReadAt(b, off)
	if got >= len(dst) {
		err = nil
	}
	copy(dst, b[:got])
	return err
}

func (s *File) readErr(index int64, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		err = fmt.Errorf("file is shorter than its size %d at open: %w: %w", s.geom.Size, ErrChanged, io.ErrUnexpectedEOF)
	case errors.Is(err, os.ErrClosed):
		err = fmt.Errorf("%w: %w", err, blockdiff.ErrClosed)
	}
	return fmt.Errorf("source: %s: %w", s.path, &blockdiff.BlockError{Op: "read", Side: "source", Index: index, Err: err})
}

// Extents calls fn for each run of blocks that may hold data, in ascending
// order. See [blockdiff.Extenter]. For a regular file the runs come from
// SEEK_DATA/SEEK_HOLE and are conservative: a block touching any data byte
// is inside a run. Where the filesystem or OS cannot tell holes, and for
// devices, one run covers the whole volume.
func (s *File) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	if s.device {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n := s.geom.Blocks(); n > 0 {
			return fn(blockdiff.Extent{First: 0, Count: n})
		}
		return nil
	}
	return FileExtents(ctx, s.f, s.geom, fn)
}

// FileExtents calls fn for each run of blocks of geometry g that may hold
// data in the regular file f, in ascending order, as [File.Extents] does: the
// runs come from SEEK_DATA/SEEK_HOLE and are conservative (a block touching
// any data byte is inside a run); where the filesystem or OS cannot tell
// holes, one run covers the whole volume. Sinks that read back a file target
// use it so that a live target's holes are not read either. An error from fn
// stops the walk and is returned as it is; its own errors name f and wrap
// [blockdiff.ErrClosed] when f was closed.
func FileExtents(ctx context.Context, f *os.File, g blockdiff.Geometry, fn func(blockdiff.Extent) error) error {
	n := g.Blocks()
	if n == 0 {
		return nil
	}
	bs := int64(g.BlockSize)
	var cur blockdiff.Extent // pending run, Count 0 when none
	var fnErr error
	emit := func(first, end int64) error {
		if cur.Count > 0 && first <= cur.End() {
			cur.Count = max(cur.End(), end) - cur.First
			return nil
		}
		if cur.Count > 0 {
			if err := fn(cur); err != nil {
				fnErr = err
				return err
			}
		}
		cur = blockdiff.Extent{First: first, Count: end - first}
		return nil
	}
	err := dataRanges(ctx, f, g.Size, func(start, end int64) error {
		return emit(start/bs, min((end+bs-1)/bs, n))
	})
	if err != nil {
		if fnErr != nil && errors.Is(err, fnErr) {
			return err
		}
		if errors.Is(err, os.ErrClosed) {
			err = fmt.Errorf("%w: %w", err, blockdiff.ErrClosed)
		}
		return fmt.Errorf("source: extents of %s: %w", f.Name(), err)
	}
	if cur.Count > 0 {
		return fn(cur)
	}
	return nil
}

// Changed reports, by an error wrapping [ErrChanged], whether the file was
// resized or (for a regular file) its modification time moved since open.
// It re-stats the open file (a device is re-sized by ioctl), costs one
// system call, and returns nil when nothing changed. An engine calls it
// after copying to refuse a copy taken from a file that changed during it.
// Writes to a device are not detected, only a resize.
func (s *File) Changed() error {
	var size int64
	if s.device {
		var err error
		if size, err = DeviceSize(s.f); err != nil {
			return fmt.Errorf("source: size of device %s: %w", s.path, err)
		}
	} else {
		fi, err := s.f.Stat()
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		size = fi.Size()
		if !fi.ModTime().Equal(s.mtime) {
			return fmt.Errorf("source: %s was modified at %s, after it was opened (modified %s): %w",
				s.path, fi.ModTime().Format(time.RFC3339Nano), s.mtime.Format(time.RFC3339Nano), ErrChanged)
		}
	}
	if size != s.geom.Size {
		return fmt.Errorf("source: %s is now %d bytes, was %d at open: %w", s.path, size, s.geom.Size, ErrChanged)
	}
	return nil
}

// Stamp returns the size and modification time recorded at open (the
// modification time is zero for a device).
func (s *File) Stamp() (size int64, mtime time.Time) { return s.geom.Size, s.mtime }

// Close closes the file. Reads after Close fail with [blockdiff.ErrClosed];
// a second Close returns an error wrapping it too.
func (s *File) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("source: close %s: %w", s.path, blockdiff.ErrClosed)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

func roundUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

func isAligned(b []byte) bool {
	return len(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign == 0
}

// AlignedBuffer returns an n-byte slice whose first byte is aligned to
// [DirectAlign], as O_DIRECT reads and writes need.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % directAlign)
	if off != 0 {
		off = directAlign - off
	}
	return b[off : off+n : off+n]
}
