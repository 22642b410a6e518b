package ebsfake

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// block is one stored block version. Its gen is unique across the Server and is what block
// tokens and ListChangedBlocks compare. A block is immutable once stored.
type block struct {
	gen  uint64
	sum  [32]byte
	data []byte // memory store; nil for zero blocks and for the log store
	off  int64  // log store offset; -1 for zero blocks
}

func (b *block) zero() bool { return b.sum == zeroDigest }

// blockStore keeps block data. Implementations are safe for concurrent use.
type blockStore interface {
	// put stores data (BlockSize bytes) for b and reports whether it kept data, which
	// the caller must then not reuse.
	put(b *block, data []byte) (kept bool, err error)
	// reader returns the block's bytes.
	reader(b *block) io.ReaderAt
	close() error
}

type memStore struct{}

func (memStore) put(b *block, data []byte) (bool, error) {
	if b.zero() {
		return false, nil
	}
	b.data = data
	return true, nil
}

func (memStore) reader(b *block) io.ReaderAt {
	if b.zero() {
		return zeroReader{}
	}
	return bytesReaderAt(b.data)
}

func (memStore) close() error { return nil }

type bytesReaderAt []byte

func (p bytesReaderAt) ReadAt(dst []byte, off int64) (int, error) {
	if off >= int64(len(p)) {
		return 0, io.EOF
	}
	n := copy(dst, p[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

type zeroReader struct{}

func (zeroReader) ReadAt(dst []byte, off int64) (int, error) {
	if off >= BlockSize {
		return 0, io.EOF
	}
	n := min(len(dst), int(BlockSize-off))
	clear(dst[:n])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

// logStore appends every non-zero block to one file; overwritten blocks leave dead space.
type logStore struct {
	f      *os.File
	mu     sync.Mutex
	next   int64
	closed bool
}

func openLogStore(dir string) (*logStore, error) {
	f, err := os.CreateTemp(dir, "ebsfake-*.blocks")
	if err != nil {
		return nil, fmt.Errorf("ebsfake: create block log in DataDir %q: %w (check that it exists and is writable)", dir, err)
	}
	return &logStore{f: f}, nil
}

func (l *logStore) put(b *block, data []byte) (bool, error) {
	if b.zero() {
		b.off = -1
		return false, nil
	}
	l.mu.Lock()
	off := l.next
	l.next += BlockSize
	l.mu.Unlock()
	if _, err := l.f.WriteAt(data, off); err != nil {
		return false, fmt.Errorf("ebsfake: write block log %s: %w", l.f.Name(), err)
	}
	b.off = off
	return false, nil
}

func (l *logStore) reader(b *block) io.ReaderAt {
	if b.zero() {
		return zeroReader{}
	}
	return io.NewSectionReader(l.f, b.off, BlockSize)
}

func (l *logStore) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	name := l.f.Name()
	err := l.f.Close()
	if rmErr := os.Remove(name); rmErr != nil && err == nil {
		err = fmt.Errorf("ebsfake: remove block log: %w", rmErr)
	}
	return err
}

// zeroBlock is a read-only block of zeros.
var zeroBlock [BlockSize]byte

var blockPool = sync.Pool{New: func() any { b := make([]byte, BlockSize); return &b }}
