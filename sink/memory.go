package sink

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/blockferry/blockferry/blockdiff"
)

// Memory is a [blockdiff.Sink] holding the volume in a byte slice, for tests
// and examples. It also implements [blockdiff.Zeroer], [blockdiff.Copier]
// and [blockdiff.Source], and records the manifest given to Commit. Unwritten
// blocks read as zeros. It is safe for concurrent use.
type Memory struct {
	geom blockdiff.Geometry

	writes, zeroes, copies atomic.Int64

	mu        sync.RWMutex
	data      []byte
	committed bool
	closed    bool
	manifest  *blockdiff.Manifest
}

var (
	_ blockdiff.Sink   = (*Memory)(nil)
	_ blockdiff.Source = (*Memory)(nil)
	_ blockdiff.Zeroer = (*Memory)(nil)
	_ blockdiff.Copier = (*Memory)(nil)
)

// NewMemory returns an empty (all zero) in-memory sink of geometry g. It
// returns an error wrapping [blockdiff.ErrGeometry] if g is invalid. The
// whole volume is allocated at once, so keep g.Size to what fits in memory.
func NewMemory(g blockdiff.Geometry) (*Memory, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("sink: memory: %w", err)
	}
	return &Memory{geom: g, data: make([]byte, g.Size)}, nil
}

// Geometry returns the volume's geometry.
func (m *Memory) Geometry() blockdiff.Geometry { return m.geom }

// WriteBlock stores data as block index. See [blockdiff.Sink]. The digest is
// not checked.
func (m *Memory) WriteBlock(ctx context.Context, index int64, data []byte, _ blockdiff.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := m.geom.BlockLen(index)
	if n == 0 {
		return blockErr("memory", "write", index, fmt.Errorf("volume has %d blocks: %w", m.geom.Blocks(), blockdiff.ErrOutOfRange))
	}
	if len(data) != n {
		return blockErr("memory", "write", index, fmt.Errorf("got %d bytes, want %d: %w", len(data), n, blockdiff.ErrGeometry))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return blockErr("memory", "write", index, err)
	}
	copy(m.data[m.geom.Offset(index):], data)
	m.writes.Add(1)
	return nil
}

// ZeroBlocks makes the blocks of e read as zeros. See [blockdiff.Zeroer].
func (m *Memory) ZeroBlocks(ctx context.Context, e blockdiff.Extent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkExtent(m.geom, e); err != nil {
		return fmt.Errorf("sink: memory: zero: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return fmt.Errorf("sink: memory: zero blocks %d+%d: %w", e.First, e.Count, err)
	}
	start, end := extentBytes(m.geom, e)
	clear(m.data[start:end])
	m.zeroes.Add(e.Count)
	return nil
}

// CopyBlock copies block src to block dst. See [blockdiff.Copier]. Both
// blocks must have the same length (only the last block may be short).
func (m *Memory) CopyBlock(ctx context.Context, dst, src int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCopy(m.geom, dst, src); err != nil {
		return blockErr("memory", "copy", dst, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return blockErr("memory", "copy", dst, err)
	}
	n := int64(m.geom.BlockLen(dst))
	so, do := m.geom.Offset(src), m.geom.Offset(dst)
	copy(m.data[do:do+n], m.data[so:so+n])
	m.copies.Add(1)
	return nil
}

// ReadBlock reads block index as currently written. See [blockdiff.Source].
// It works before and after Commit, but not after Close.
func (m *Memory) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := m.geom.BlockLen(index)
	if n == 0 {
		return 0, blockErr("memory", "read", index, fmt.Errorf("volume has %d blocks: %w", m.geom.Blocks(), blockdiff.ErrOutOfRange))
	}
	if len(buf) < n {
		return 0, blockErr("memory", "read", index, fmt.Errorf("buffer of %d bytes is shorter than the block's %d", len(buf), n))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, blockErr("memory", "read", index, blockdiff.ErrClosed)
	}
	off := m.geom.Offset(index)
	return copy(buf, m.data[off:off+int64(n)]), nil
}

// Commit records m (which may be nil) and seals the sink: later writes fail
// with [blockdiff.ErrClosed]. A manifest whose geometry differs from the
// sink's is refused with [blockdiff.ErrGeometry].
func (m *Memory) Commit(ctx context.Context, man *blockdiff.Manifest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if man != nil && man.Geometry() != m.geom {
		return fmt.Errorf("sink: memory: commit: manifest geometry %v differs from sink %v: %w", man.Geometry(), m.geom, blockdiff.ErrGeometry)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return fmt.Errorf("sink: memory: commit: %w", err)
	}
	m.committed = true
	m.manifest = man
	return nil
}

// Close releases the sink. Later writes, commits and reads fail with
// [blockdiff.ErrClosed]; Bytes still works. Closing twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Bytes returns a copy of the volume as it now stands.
func (m *Memory) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.data)
}

// Committed reports whether Commit succeeded.
func (m *Memory) Committed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.committed
}

// Manifest returns the manifest given to a successful Commit, or nil.
func (m *Memory) Manifest() *blockdiff.Manifest {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.manifest
}

// Writes returns how many WriteBlock calls succeeded.
func (m *Memory) Writes() int64 { return m.writes.Load() }

// Zeroed returns how many blocks ZeroBlocks calls covered.
func (m *Memory) Zeroed() int64 { return m.zeroes.Load() }

// Copies returns how many CopyBlock calls succeeded.
func (m *Memory) Copies() int64 { return m.copies.Load() }

// usable reports ErrClosed after Commit or Close. m.mu must be held.
func (m *Memory) usable() error {
	switch {
	case m.closed:
		return fmt.Errorf("sink is closed: %w", blockdiff.ErrClosed)
	case m.committed:
		return fmt.Errorf("sink is already committed: %w", blockdiff.ErrClosed)
	}
	return nil
}

func blockErr(name, op string, index int64, err error) error {
	return fmt.Errorf("sink: %s: %w", name, &blockdiff.BlockError{Op: op, Side: "sink", Index: index, Err: err})
}

func checkExtent(g blockdiff.Geometry, e blockdiff.Extent) error {
	if e.First < 0 || e.Count < 0 || e.End() > g.Blocks() {
		return fmt.Errorf("blocks %d+%d outside volume of %d blocks: %w", e.First, e.Count, g.Blocks(), blockdiff.ErrOutOfRange)
	}
	return nil
}

// extentBytes returns the byte range [start, end) of e, which must be valid.
func extentBytes(g blockdiff.Geometry, e blockdiff.Extent) (start, end int64) {
	start = g.Offset(e.First)
	end = min(g.Offset(e.End()), g.Size)
	return start, end
}

func checkCopy(g blockdiff.Geometry, dst, src int64) error {
	dn, sn := g.BlockLen(dst), g.BlockLen(src)
	if dn == 0 || sn == 0 {
		return fmt.Errorf("copy from block %d: volume has %d blocks: %w", src, g.Blocks(), blockdiff.ErrOutOfRange)
	}
	if dn != sn {
		return fmt.Errorf("copy from block %d of %d bytes into block of %d bytes: %w", src, sn, dn, blockdiff.ErrGeometry)
	}
	return nil
}
