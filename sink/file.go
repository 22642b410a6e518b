package sink

import (
	"context"
	"errors"
	"fmt"
	"github.com/blockferry/blockferry/source"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/blockferry/blockferry/blockdiff"
)

const directAlign = source.DirectAlign

// Options configures [OpenFile]. The zero value works: it creates or grows a
// regular file sparsely, refuses to shrink a larger one, and zeroes device
// ranges with BLKZEROOUT.
type Options struct {
	// Truncate lets OpenFile cut a regular file that is larger than the
	// volume down to the volume size. Default false: a larger file is
	// refused with an error wrapping [blockdiff.ErrGeometry], because
	// cutting it silently would destroy data past the volume's end. A
	// block device is never resized: a larger device is used as is (bytes
	// past the volume are left alone), a smaller one is refused.
	Truncate bool

	// Direct opens the target with O_DIRECT, bypassing the page cache.
	// Writes and reads go through internal 4096-byte-aligned buffers
	// (callers' buffers may be unaligned); a short last block goes through
	// a second, buffered descriptor. Default false. Linux only; some
	// filesystems (tmpfs) refuse it.
	Direct bool

	// Discard makes ZeroBlocks on a block device issue BLKDISCARD (TRIM)
	// instead of BLKZEROOUT. Set it only for devices known to read
	// discarded ranges as zeros (thin LVM, loop devices over sparse files,
	// most NVMe with deterministic zeroing): a device that does not will
	// hand back stale data for blocks the manifest calls zero. Default
	// false: BLKZEROOUT, which always reads back as zeros (the kernel
	// offloads it, possibly unmapping, or writes zeros itself). Ignored
	// for regular files, where zeroed blocks always become holes.
	Discard bool

	// ManifestPath, when not empty, is where Commit writes the committed
	// manifest with [blockdiff.WriteManifestFile], after the data is
	// synced. Default "": no manifest file.
	ManifestPath string

	// Perm is the permission of a file OpenFile creates, before the umask.
	// Default 0o600: disk images often hold private data.
	Perm fs.FileMode

	// forceDevice writes a regular file through the block device code path
	// (no resizing, BLKZEROOUT/BLKDISCARD falling back to writing zeros).
	// For tests.
	forceDevice bool
}

// File is a [blockdiff.Sink] writing a regular file (an image) or a block
// device with pwrite. It also implements [blockdiff.Zeroer] (punched holes
// in a file; BLKZEROOUT or BLKDISCARD on a device), [blockdiff.Copier]
// (copy_file_range in a file) and [blockdiff.Source], so a target can be
// read back for verification or hashed live as the base of a diff.
//
// Writes may run concurrently with each other on different indices; Commit
// and Close wait for writes in flight. After Commit or Close, writes fail
// with [blockdiff.ErrClosed]; ReadBlock works until Close.
type File struct {
	path    string
	geom    blockdiff.Geometry
	opts    Options
	device  bool
	created bool // this OpenFile created the file: every block reads as zeros until written

	f    *os.File // O_DIRECT when opts.Direct
	tail *os.File // buffered descriptor for the short last block when opts.Direct, else f
	bufs sync.Pool

	mu        sync.RWMutex // writers hold it shared; Commit and Close exclusively
	committed bool
	closed    bool
	err       error // first fatal error (failed fsync), returned by every later call
}

var (
	_ blockdiff.Sink   = (*File)(nil)
	_ blockdiff.Source = (*File)(nil)
	_ blockdiff.Zeroer = (*File)(nil)
	_ blockdiff.Copier = (*File)(nil)
	// replicate.Syncer and replicate.UnwrittenZero, by method set (sink
	// does not import replicate).
	_ interface{ Sync(context.Context) error } = (*File)(nil)
	_ interface{ UnwrittenZero() bool }        = (*File)(nil)
)

// OpenFile opens path as the target of a volume of geometry g, creating a
// regular file if it does not exist. A new or smaller regular file is
// extended to g.Size sparsely (blocks never written read as zeros); a larger
// one is refused unless [Options.Truncate] (see there for the policy). A
// block device smaller than g.Size is refused with an error wrapping
// [blockdiff.ErrGeometry]. A read-only file or filesystem is refused at
// open. Directories, character devices and pipes are refused.
func OpenFile(path string, g blockdiff.Geometry, opts Options) (*File, error) {
	opts.forceDevice = false
	return openFile(path, g, opts)
}

func openFile(path string, g blockdiff.Geometry, opts Options) (_ *File, err error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("sink: open %s: %w", path, err)
	}
	if opts.Perm == 0 {
		opts.Perm = 0o600
	}
	if opts.Direct && oDirect == 0 {
		return nil, fmt.Errorf("sink: open %s: Options.Direct (O_DIRECT) is not supported on this operating system", path)
	}
	flags := os.O_RDWR
	if fi, err := os.Stat(path); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sink: %w", err)
		}
		// O_EXCL: created is true only if this open made the file, not
		// another process racing with it.
		flags |= os.O_CREATE | os.O_EXCL
	} else if m := fi.Mode(); !m.IsRegular() && (m&fs.ModeDevice == 0 || m&fs.ModeCharDevice != 0) {
		return nil, fmt.Errorf("sink: open %s: %s is neither a regular file nor a block device", path, m.Type())
	}
	s := &File{path: path, geom: g, opts: opts}
	s.f, err = openRW(path, flags, opts)
	if err != nil && flags&os.O_EXCL != 0 && errors.Is(err, fs.ErrExist) {
		flags &^= os.O_CREATE | os.O_EXCL // created meanwhile by someone else
		s.f, err = openRW(path, flags, opts)
	}
	if err != nil {
		return nil, err
	}
	s.created = flags&os.O_CREATE != 0
	s.tail = s.f
	defer func() {
		if err != nil {
			s.closeFiles()
		}
	}()
	if opts.Direct {
		if s.tail, err = openRW(path, os.O_RDWR, Options{Perm: opts.Perm}); err != nil {
			return nil, err
		}
		s.bufs.New = func() any { b := source.AlignedBuffer(g.BlockSize); return &b }
	} else {
		s.bufs.New = func() any { b := make([]byte, g.BlockSize); return &b }
	}
	fi, err := s.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	switch m := fi.Mode(); {
	case m.IsRegular() && !opts.forceDevice:
		if err := s.sizeRegular(fi.Size()); err != nil {
			return nil, err
		}
	case m.IsRegular() || (m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0):
		s.device, s.created = true, false
		size, err := source.DeviceSize(s.f)
		if err != nil {
			return nil, fmt.Errorf("sink: size of device %s: %w", path, err)
		}
		ro, err := deviceReadOnly(s.f)
		if err != nil {
			return nil, fmt.Errorf("sink: device %s: %w", path, err)
		}
		if ro {
			return nil, fmt.Errorf("sink: device %s is read-only (BLKROGET); make it writable (blockdev --setrw) or choose another target: %w", path, syscall.EROFS)
		}
		if size < g.Size {
			return nil, fmt.Errorf("sink: device %s holds %d bytes, too small for a volume of %d bytes; use a device of at least that size: %w",
				path, size, g.Size, blockdiff.ErrGeometry)
		}
	default:
		return nil, fmt.Errorf("sink: open %s: %s is neither a regular file nor a block device", path, m.Type())
	}
	return s, nil
}

func openRW(path string, flags int, opts Options) (*os.File, error) {
	if opts.Direct {
		flags |= oDirect
	}
	f, err := os.OpenFile(path, flags, opts.Perm)
	switch {
	case err == nil:
		return f, nil
	case isReadOnly(err):
		return nil, fmt.Errorf("sink: %w (the target is read-only; choose a writable target or fix its permissions)", err)
	case opts.Direct && isInval(err):
		return nil, fmt.Errorf("sink: %w (the filesystem refuses O_DIRECT; open without Options.Direct)", err)
	}
	return nil, fmt.Errorf("sink: %w", err)
}

// sizeRegular makes the regular target exactly the volume size.
func (s *File) sizeRegular(size int64) error {
	switch {
	case size == s.geom.Size:
		return nil
	case size > s.geom.Size && !s.opts.Truncate:
		return fmt.Errorf("sink: %s holds %d bytes, more than the volume's %d; refusing to cut it (set Options.Truncate to allow, or choose another target): %w",
			s.path, size, s.geom.Size, blockdiff.ErrGeometry)
	}
	if err := s.tail.Truncate(s.geom.Size); err != nil {
		return fmt.Errorf("sink: resize %s from %d to %d bytes: %w", s.path, size, s.geom.Size, err)
	}
	return nil
}

// Geometry returns the volume's geometry.
func (s *File) Geometry() blockdiff.Geometry { return s.geom }

// Path returns the path the target was opened with.
func (s *File) Path() string { return s.path }

// IsDevice reports whether the target is written as a block device.
func (s *File) IsDevice() bool { return s.device }

// WriteBlock writes data as block index with one pwrite. See
// [blockdiff.Sink]. A failed write (ENOSPC, EIO) returns an error naming the
// path and block that wraps the OS error; the block must then be treated as
// not written.
func (s *File) WriteBlock(ctx context.Context, index int64, data []byte, _ blockdiff.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := s.geom.BlockLen(index)
	if n == 0 {
		return s.blockErr("write", index, s.outOfRange())
	}
	if len(data) != n {
		return s.blockErr("write", index, fmt.Errorf("got %d bytes, want %d: %w", len(data), n, blockdiff.ErrGeometry))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return s.blockErr("write", index, err)
	}
	if err := s.writeAt(data, s.geom.Offset(index)); err != nil {
		return s.blockErr("write", index, err)
	}
	return nil
}

// writeAt writes data at off (a multiple of directAlign), via an aligned
// buffer when O_DIRECT needs one.
func (s *File) writeAt(data []byte, off int64) error {
	switch {
	case !s.opts.Direct:
		_, err := s.f.WriteAt(data, off)
		return err
	case len(data)%directAlign != 0:
		_, err := s.tail.WriteAt(data, off)
		return err
	case isAligned(data):
		_, err := s.f.WriteAt(data, off)
		return err
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:len(data)]
	copy(b, data)
	_, err := s.f.WriteAt(b, off)
	return err
}

// readAt fills dst from off (a multiple of directAlign).
func (s *File) readAt(dst []byte, off int64) error {
	switch {
	case !s.opts.Direct:
		_, err := s.f.ReadAt(dst, off)
		return err
	case len(dst)%directAlign != 0:
		_, err := s.tail.ReadAt(dst, off)
		return err
	case isAligned(dst):
		_, err := s.f.ReadAt(dst, off)
		return err
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:len(dst)]
	_, err := s.f.ReadAt(b, off)
	copy(dst, b)
	return err
}

// ReadBlock reads block index as the target now holds it. See
// [blockdiff.Source]. It works before and after Commit, not after Close.
func (s *File) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := s.geom.BlockLen(index)
	if n == 0 {
		return 0, s.blockErr("read", index, s.outOfRange())
	}
	if len(buf) < n {
		return 0, s.blockErr("read", index, fmt.Errorf("buffer of %d bytes is shorter than the block's %d; pass a buffer of Geometry().BlockSize bytes", len(buf), n))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, s.blockErr("read", index, fmt.Errorf("sink is closed: %w", blockdiff.ErrClosed))
	}
	if err := s.readAt(buf[:n], s.geom.Offset(index)); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("target is shorter than the volume (was it truncated meanwhile?): %w", io.ErrUnexpectedEOF)
		}
		return 0, s.blockErr("read", index, err)
	}
	return n, nil
}

// ZeroBlocks makes the blocks of e read as zeros. See [blockdiff.Zeroer].
// In a regular file it punches a hole (fallocate PUNCH_HOLE|KEEP_SIZE),
// writing zeros where the filesystem cannot; on a device it issues
// BLKZEROOUT, or BLKDISCARD with [Options.Discard], writing zeros where the
// device refuses.
func (s *File) ZeroBlocks(ctx context.Context, e blockdiff.Extent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkExtent(s.geom, e); err != nil {
		return fmt.Errorf("sink: %s: zero: %w", s.path, err)
	}
	if e.Count == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return s.zeroErr(e, err)
	}
	start, end := extentBytes(s.geom, e)
	if !s.device {
		err := punchHole(s.tail, start, end-start)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			return s.zeroErr(e, err)
		}
	} else {
		// Ranges handed to the kernel must be sector aligned; the
		// unaligned tail of a short last block is written as zeros.
		aend := start + (end-start)&^(directAlign-1)
		if aend > start {
			err := zeroDevice(s.f, start, aend-start, s.opts.Discard)
			if err == nil {
				if aend == end {
					return nil
				}
				return s.writeZeros(ctx, e, aend, end)
			}
			if !errors.Is(err, errors.ErrUnsupported) {
				return s.zeroErr(e, err)
			}
		}
	}
	return s.writeZeros(ctx, e, start, end)
}

// writeZeros writes zero bytes over [start, end) in block-sized pieces.
func (s *File) writeZeros(ctx context.Context, e blockdiff.Extent, start, end int64) error {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	z := *bp
	clear(z)
	for off := start; off < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(z)), end-off))
		if err := s.writeAt(z[:n], off); err != nil {
			return s.zeroErr(e, err)
		}
		off += int64(n)
	}
	return nil
}

// CopyBlock copies block src of the target to block dst. See
// [blockdiff.Copier]. A regular file uses copy_file_range (which may share
// extents on filesystems that reflink), falling back to pread and pwrite
// through a pooled buffer.
func (s *File) CopyBlock(ctx context.Context, dst, src int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCopy(s.geom, dst, src); err != nil {
		return s.blockErr("copy", dst, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return s.blockErr("copy", dst, err)
	}
	if dst == src {
		return nil
	}
	n := s.geom.BlockLen(dst)
	so, do := s.geom.Offset(src), s.geom.Offset(dst)
	if !s.device && !s.opts.Direct {
		err := copyRange(s.f, so, do, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			return s.blockErr("copy", dst, fmt.Errorf("from block %d: %w", src, err))
		}
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:n]
	if err := s.readAt(b, so); err != nil {
		return s.blockErr("copy", dst, fmt.Errorf("read block %d: %w", src, err))
	}
	if err := s.writeAt(b, do); err != nil {
		return s.blockErr("copy", dst, err)
	}
	return nil
}

// Commit syncs everything written to stable storage (fsync), then, with
// [Options.ManifestPath], writes m there. m may be nil when no manifest file
// is wanted; a manifest whose geometry differs from the target's is refused
// with [blockdiff.ErrGeometry]. After Commit returns nil, writes fail with
// [blockdiff.ErrClosed]. A failed fsync is final: every later call returns
// it, since the kernel may already have dropped the unwritten pages.
func (s *File) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m != nil && m.Geometry() != s.geom {
		return fmt.Errorf("sink: commit %s: manifest geometry %v differs from target %v: %w", s.path, m.Geometry(), s.geom, blockdiff.ErrGeometry)
	}
	if m == nil && s.opts.ManifestPath != "" {
		return fmt.Errorf("sink: commit %s: Options.ManifestPath is set but the manifest is nil", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("sink: commit %s: %w", s.path, err)
	}
	if err := s.sync(); err != nil {
		s.err = fmt.Errorf("sink: sync %s: %w", s.path, err)
		return s.err
	}
	if s.opts.ManifestPath != "" {
		if err := writeManifest(s.opts.ManifestPath, m); err != nil {
			return fmt.Errorf("sink: commit %s: %w", s.path, err)
		}
	}
	s.committed = true
	return nil
}

// Sync makes every write, zeroing and copy that has returned durable
// (fsync), without sealing the target: writes go on after it. It is
// [replicate.Syncer]: with a journal, the engine syncs the target before
// each journal fsync, so that after a power loss the journal never names a
// block the disk lost. Sync runs beside writes in flight (they are not
// covered). After Commit it returns nil (Commit synced); after Close it
// returns an error wrapping [blockdiff.ErrClosed]. A failed fsync is final,
// as in Commit: it is returned by Sync and every later call.
//
// [replicate.Syncer]: https://pkg.go.dev/github.com/blockferry/blockferry/replicate#Syncer
func (s *File) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	switch {
	case s.err != nil:
		s.mu.RUnlock()
		return s.err
	case s.closed:
		s.mu.RUnlock()
		return fmt.Errorf("sink: sync %s: sink is closed: %w", s.path, blockdiff.ErrClosed)
	case s.committed:
		s.mu.RUnlock()
		return nil
	}
	err := s.sync()
	s.mu.RUnlock()
	if err == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("sink: sync %s: %w", s.path, err)
	}
	return s.err
}

// UnwrittenZero reports whether every block not written since OpenFile
// reads as zeros: true only when this OpenFile created the file (a new
// sparse file). It is false for a file that existed before, whatever it
// holds, and for a block device, even with [Options.Discard]. It is
// [replicate.UnwrittenZero]: the engine may then leave a full copy's zero
// blocks out instead of zeroing them.
//
// [replicate.UnwrittenZero]: https://pkg.go.dev/github.com/blockferry/blockferry/replicate#UnwrittenZero
func (s *File) UnwrittenZero() bool { return s.created }

func (s *File) sync() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if s.tail != s.f {
		return s.tail.Sync()
	}
	return nil
}

// Close closes the target without syncing. A target closed without Commit
// keeps what the kernel wrote but is not sealed. A second Close returns an
// error wrapping [blockdiff.ErrClosed].
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sink: close %s: %w", s.path, blockdiff.ErrClosed)
	}
	s.closed = true
	if err := s.closeFiles(); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

func (s *File) closeFiles() error {
	var err error
	if s.tail != nil && s.tail != s.f {
		err = s.tail.Close()
	}
	if s.f != nil {
		err = errors.Join(s.f.Close(), err)
	}
	return err
}

// writable reports why writes are refused, or nil. s.mu must be held.
func (s *File) writable() error {
	switch {
	case s.err != nil:
		return s.err
	case s.closed:
		return fmt.Errorf("sink is closed: %w", blockdiff.ErrClosed)
	case s.committed:
		return fmt.Errorf("sink is already committed: %w", blockdiff.ErrClosed)
	}
	return nil
}

func (s *File) outOfRange() error {
	return fmt.Errorf("volume has %d blocks: %w", s.geom.Blocks(), blockdiff.ErrOutOfRange)
}

func (s *File) blockErr(op string, index int64, err error) error {
	return blockErr(s.path, op, index, err)
}

func (s *File) zeroErr(e blockdiff.Extent, err error) error {
	return fmt.Errorf("sink: %s: zero blocks %d to %d: %w", s.path, e.First, e.End()-1, err)
}

// SameFile reports whether path1 and path2 name the same file or the same
// block device (by device number, so /dev/sda and a /dev/disk/by-id link to
// it are the same). A path that does not exist is not the same as anything:
// the result is false with a nil error. The CLI and engine call it to refuse
// a target that is also the source.
func SameFile(path1, path2 string) (bool, error) {
	fi1, err := os.Stat(path1)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sink: %w", err)
	}
	fi2, err := os.Stat(path2)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sink: %w", err)
	}
	if os.SameFile(fi1, fi2) {
		return true, nil
	}
	return sameDevice(fi1, fi2), nil
}

func isAligned(b []byte) bool {
	return len(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign == 0
}

// Extents calls fn for each run of blocks the target may hold data in, in
// ascending order; see [blockdiff.Extenter]. For a regular file the runs
// come from SEEK_DATA/SEEK_HOLE ([source.FileExtents]), so an engine hashing
// a live sparse target does not read its holes; a device reports one run
// over the whole volume, since its unwritten blocks are not known to read
// as zeros.
func (s *File) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("sink: extents of %s: sink is closed: %w", s.path, blockdiff.ErrClosed)
	}
	if s.device {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n := s.geom.Blocks(); n > 0 {
			return fn(blockdiff.Extent{First: 0, Count: n})
		}
		return nil
	}
	return source.FileExtents(ctx, s.f, s.geom, fn)
}
