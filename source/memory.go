package source

import (
	"context"
	"fmt"
	"slices"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// Memory is a [blockdiff.Source] over a byte slice, for tests and examples.
// It is safe for concurrent use; its contents never change after
// [NewMemory] returns.
type Memory struct {
	data []byte
	geom blockdiff.Geometry
}

var _ blockdiff.Source = (*Memory)(nil)

// NewMemory returns a source reading a copy of data in blocks of blockSize
// bytes. A blockSize of 0 means [blockdiff.DefaultBlockSize]; any other value
// must pass [blockdiff.ValidateBlockSize]. The volume size is len(data); the
// last block is short when len(data) is not a multiple of blockSize.
func NewMemory(data []byte, blockSize int) (*Memory, error) {
	if blockSize == 0 {
		blockSize = blockdiff.DefaultBlockSize
	}
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: blockSize}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("source: memory: %w", err)
	}
	return &Memory{data: slices.Clone(data), geom: g}, nil
}

// Geometry returns the volume's geometry.
func (m *Memory) Geometry() blockdiff.Geometry { return m.geom }

// ReadBlock copies block index into buf and returns its length. See
// [blockdiff.Source] for the contract.
func (m *Memory) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := m.geom.BlockLen(index)
	if n == 0 {
		return 0, outOfRange("memory", m.geom, index)
	}
	if len(buf) < n {
		return 0, shortBuffer("memory", index, len(buf), n)
	}
	off := m.geom.Offset(index)
	return copy(buf, m.data[off:off+int64(n)]), nil
}

// SparseMemory is a [Memory] source that also declares holes, so it acts as
// a [blockdiff.Extenter] in tests. It is safe for concurrent use.
type SparseMemory struct {
	Memory
	extents []blockdiff.Extent // data extents: the complement of the holes
}

var (
	_ blockdiff.Source   = (*SparseMemory)(nil)
	_ blockdiff.Extenter = (*SparseMemory)(nil)
)

// NewSparseMemory returns a source like [NewMemory] whose blocks in holes are
// reported as unallocated by Extents. Holes may be given in any order and may
// overlap or touch; each must lie inside the volume, and every block in a
// hole must be all zeros in data (a hole reads as zeros), else the error
// wraps [blockdiff.ErrGeometry] or [blockdiff.ErrOutOfRange].
func NewSparseMemory(data []byte, blockSize int, holes []blockdiff.Extent) (*SparseMemory, error) {
	m, err := NewMemory(data, blockSize)
	if err != nil {
		return nil, err
	}
	n := m.geom.Blocks()
	hole := make([]bool, n)
	for _, h := range holes {
		if h.First < 0 || h.Count < 0 || h.End() > n {
			return nil, fmt.Errorf("source: memory: hole %d+%d outside %d blocks: %w", h.First, h.Count, n, blockdiff.ErrOutOfRange)
		}
		for i := h.First; i < h.End(); i++ {
			off := m.geom.Offset(i)
			blk := m.data[off : off+int64(m.geom.BlockLen(i))]
			if !hashing.IsZero(blk) {
				return nil, fmt.Errorf("source: memory: hole at block %d holds non-zero bytes; a hole must read as zeros: %w", i, blockdiff.ErrGeometry)
			}
			hole[i] = true
		}
	}
	s := &SparseMemory{Memory: *m}
	for i := int64(0); i < n; {
		if hole[i] {
			i++
			continue
		}
		j := i
		for j < n && !hole[j] {
			j++
		}
		s.extents = append(s.extents, blockdiff.Extent{First: i, Count: j - i})
		i = j
	}
	return s, nil
}

// Extents calls fn for each run of blocks outside the declared holes, in
// ascending order. See [blockdiff.Extenter].
func (s *SparseMemory) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	for _, e := range s.extents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func outOfRange(name string, g blockdiff.Geometry, index int64) error {
	return fmt.Errorf("source: %s: %w", name, &blockdiff.BlockError{
		Op: "read", Side: "source", Index: index,
		Err: fmt.Errorf("volume has %d blocks: %w", g.Blocks(), blockdiff.ErrOutOfRange),
	})
}

func shortBuffer(name string, index int64, have, want int) error {
	return fmt.Errorf("source: %s: %w", name, &blockdiff.BlockError{
		Op: "read", Side: "source", Index: index,
		Err: fmt.Errorf("buffer of %d bytes is shorter than the block's %d; pass a buffer of Geometry().BlockSize bytes", have, want),
	})
}
