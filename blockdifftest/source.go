package blockdifftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

// OpenSource opens a source under test holding content in blocks of
// blockSize bytes. holes lists runs of blocks that are all zeros in content
// and that the source should store as holes if it can (a sparse file, an
// unlisted EBS block); a source that cannot may ignore holes. The opener
// registers any cleanup with t.Cleanup and calls t.Fatal on failure.
type OpenSource func(t *testing.T, content []byte, holes []blockdiff.Extent, blockSize int) blockdiff.Source

// SourceCase is one volume the source suite opens.
type SourceCase struct {
	Name      string
	Content   []byte
	Holes     []blockdiff.Extent
	BlockSize int
}

// SourceCases returns the volumes [TestSource] runs on: empty, one short
// block, whole blocks, short last blocks (of an odd length and of a whole
// number of 512-byte sectors, which block devices can have), a larger block
// size, and sparse volumes with holes at the start, middle and end. Content comes from [Volume] with fixed seeds.
func SourceCases() []SourceCase {
	const bs = blockdiff.MinBlockSize
	sparse := func(size int64, holes ...blockdiff.Extent) []byte {
		v := Volume(7, blockdiff.Geometry{Size: size, BlockSize: bs}, 0.2, 0.2)
		g := blockdiff.Geometry{Size: size, BlockSize: bs}
		for _, h := range holes {
			start, end := g.Offset(h.First), min(g.Offset(h.End()), size)
			clear(v[start:end])
		}
		return v
	}
	holes := []blockdiff.Extent{{First: 0, Count: 2}, {First: 5, Count: 3}, {First: 15, Count: 1}}
	return []SourceCase{
		{Name: "empty", Content: nil, BlockSize: bs},
		{Name: "one short block", Content: Volume(1, blockdiff.Geometry{Size: 100, BlockSize: bs}, 0, 0), BlockSize: bs},
		{Name: "whole blocks", Content: Volume(2, blockdiff.Geometry{Size: 16 * bs, BlockSize: bs}, 0.25, 0.25), BlockSize: bs},
		{Name: "short last block", Content: Volume(3, blockdiff.Geometry{Size: 9*bs + 1234, BlockSize: bs}, 0.2, 0.2), BlockSize: bs},
		{Name: "sector-sized short last block", Content: Volume(5, blockdiff.Geometry{Size: 9*bs + 1536, BlockSize: bs}, 0.2, 0.2), BlockSize: bs},
		{Name: "larger block size", Content: Volume(4, blockdiff.Geometry{Size: 5*4*bs + 512, BlockSize: 4 * bs}, 0.2, 0.2), BlockSize: 4 * bs},
		{Name: "holes", Content: sparse(16*bs, holes...), Holes: holes, BlockSize: bs},
		{Name: "holes short last block", Content: sparse(15*bs+10, holes...), Holes: holes, BlockSize: bs},
		{Name: "all hole", Content: make([]byte, 8*bs), Holes: []blockdiff.Extent{{First: 0, Count: 8}}, BlockSize: bs},
	}
}

// TestSource runs the [blockdiff.Source] conformance suite on the sources
// open returns, one subtest per [SourceCases] volume. It checks: Geometry;
// every block's bytes and length, including a short last block, with a
// buffer exactly a block long and one longer; holes reading as zeros;
// [blockdiff.Extenter] runs (when implemented) being ascending, disjoint,
// inside the volume and covering every block that is not all zeros;
// concurrent reads returning the same bytes; indices past either end
// failing with [blockdiff.ErrOutOfRange]; a short buffer failing; a
// cancelled context failing with its error.
func TestSource(t *testing.T, open OpenSource) {
	t.Helper()
	for _, c := range SourceCases() {
		t.Run(c.Name, func(t *testing.T) {
			src := open(t, c.Content, c.Holes, c.BlockSize)
			checkSource(t, src, c)
		})
	}
}

func checkSource(t *testing.T, src blockdiff.Source, c SourceCase) {
	ctx := context.Background()
	g := src.Geometry()
	want := blockdiff.Geometry{Size: int64(len(c.Content)), BlockSize: c.BlockSize}
	if g != want {
		t.Fatalf("Geometry: got %v, want %v", g, want)
	}

	t.Run("read", func(t *testing.T) {
		for _, extra := range []int{0, 13} {
			buf := make([]byte, g.BlockSize+extra)
			for i := range g.Blocks() {
				n, err := src.ReadBlock(ctx, i, buf)
				if err != nil {
					t.Fatalf("ReadBlock(%d) with %d-byte buffer: %v", i, len(buf), err)
				}
				if wantN := g.BlockLen(i); n != wantN {
					t.Fatalf("ReadBlock(%d): got n=%d, want %d", i, n, wantN)
				}
				if wantB := blockOf(c.Content, g, i); !bytes.Equal(buf[:n], wantB) {
					t.Fatalf("ReadBlock(%d) with %d-byte buffer: bytes differ at offset %d", i, len(buf), firstDiff(buf[:n], wantB))
				}
			}
		}
	})

	t.Run("extents", func(t *testing.T) {
		x, ok := src.(blockdiff.Extenter)
		if !ok {
			t.Skip("source does not implement blockdiff.Extenter")
		}
		checkExtents(t, x, c.Content, g)
	})

	t.Run("concurrent", func(t *testing.T) {
		const workers = 8
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				buf := make([]byte, g.BlockSize)
				// Each worker walks the blocks from a different start.
				for k := range g.Blocks() {
					i := (k + int64(w)) % g.Blocks()
					n, err := src.ReadBlock(ctx, i, buf)
					if err != nil {
						errs <- fmt.Errorf("worker %d: ReadBlock(%d): %w", w, i, err)
						return
					}
					if !bytes.Equal(buf[:n], blockOf(c.Content, g, i)) {
						errs <- fmt.Errorf("worker %d: ReadBlock(%d): bytes differ", w, i)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("out of range", func(t *testing.T) {
		buf := make([]byte, g.BlockSize)
		for _, i := range []int64{-1, g.Blocks(), g.Blocks() + 1000} {
			if _, err := src.ReadBlock(ctx, i, buf); !errors.Is(err, blockdiff.ErrOutOfRange) {
				t.Errorf("ReadBlock(%d) of %d blocks: got %v, want an error wrapping ErrOutOfRange", i, g.Blocks(), err)
			}
		}
	})

	t.Run("short buffer", func(t *testing.T) {
		if g.Blocks() == 0 {
			t.Skip("no blocks")
		}
		last := g.Blocks() - 1
		if _, err := src.ReadBlock(ctx, last, make([]byte, g.BlockLen(last)-1)); err == nil {
			t.Errorf("ReadBlock(%d) into %d bytes for a %d-byte block: got nil error", last, g.BlockLen(last)-1, g.BlockLen(last))
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		if g.Blocks() == 0 {
			t.Skip("no blocks")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := src.ReadBlock(cctx, 0, make([]byte, g.BlockSize)); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadBlock with a cancelled context: got %v, want an error wrapping context.Canceled", err)
		}
	})
}

// checkExtents checks x's runs against content.
func checkExtents(t *testing.T, x blockdiff.Extenter, content []byte, g blockdiff.Geometry) {
	t.Helper()
	var runs []blockdiff.Extent
	if err := x.Extents(context.Background(), func(e blockdiff.Extent) error {
		runs = append(runs, e)
		return nil
	}); err != nil {
		t.Fatalf("Extents: %v", err)
	}
	covered := make([]bool, g.Blocks())
	next := int64(0)
	for _, e := range runs {
		if e.Count <= 0 || e.First < next || e.End() > g.Blocks() {
			t.Fatalf("Extents: run %+v is empty, out of order, overlapping or past %d blocks (runs %v)", e, g.Blocks(), runs)
		}
		for i := e.First; i < e.End(); i++ {
			covered[i] = true
		}
		next = e.End()
	}
	for i := range g.Blocks() {
		if !covered[i] && !isZero(blockOf(content, g, i)) {
			t.Errorf("Extents: block %d holds data but no run covers it (runs %v)", i, runs)
		}
	}
	// The first error from fn stops the walk and is returned.
	if len(runs) > 0 {
		stop := errors.New("stop")
		calls := 0
		err := x.Extents(context.Background(), func(blockdiff.Extent) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Extents with fn failing: got error %v after %d calls, want the fn's error after 1 call", err, calls)
		}
	}
}

func blockOf(content []byte, g blockdiff.Geometry, i int64) []byte {
	off := g.Offset(i)
	return content[off : off+int64(g.BlockLen(i))]
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
