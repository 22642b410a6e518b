package blockdifftest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

// OpenSink opens a new, empty sink under test of geometry g. A new sink must
// read every block as zeros until it is written (a fresh file, a new EBS
// snapshot, an empty store). The opener registers any cleanup with
// t.Cleanup and calls t.Fatal on failure.
type OpenSink func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink

// SinkSuite configures the [blockdiff.Sink] conformance suite.
type SinkSuite struct {
	// Open opens a new sink. Required.
	Open OpenSink

	// ReadBack returns the whole volume as s holds it after Commit (or
	// after Close without Commit), for sinks that are not a
	// [blockdiff.Source]. Nil: the suite reads back with s's ReadBlock,
	// and the sink must implement [blockdiff.Source].
	ReadBack func(t *testing.T, s blockdiff.Sink) []byte

	// BlockSize is the block size of the volumes opened. Zero means
	// [blockdiff.MinBlockSize] (4 KiB), which keeps the suite fast.
	BlockSize int
}

// TestSink runs the sink conformance suite on sinks from open, reading back
// through their [blockdiff.Source] ReadBlock. See [SinkSuite.Run].
func TestSink(t *testing.T, open OpenSink) {
	t.Helper()
	SinkSuite{Open: open}.Run(t)
}

// Run runs the suite. It checks: Geometry; writing every data block
// (including a short last block) and reading back the volume after Commit,
// unwritten blocks reading as zeros; data of the wrong length refused;
// indices past either end failing with [blockdiff.ErrOutOfRange];
// [blockdiff.Zeroer] (when implemented) making written blocks read as
// zeros and refusing extents past the end; [blockdiff.Copier] (when
// implemented) copying blocks; concurrent writes to different indices;
// writes after Commit and after Close failing with [blockdiff.ErrClosed];
// Close without Commit; a cancelled context failing with its error.
func (s SinkSuite) Run(t *testing.T) {
	t.Helper()
	bs := s.BlockSize
	if bs == 0 {
		bs = blockdiff.MinBlockSize
	}
	ctx := context.Background()
	shapes := []struct {
		name string
		g    blockdiff.Geometry
	}{
		{"whole blocks", blockdiff.Geometry{Size: 12 * int64(bs), BlockSize: bs}},
		{"short last block", blockdiff.Geometry{Size: 11*int64(bs) + 321, BlockSize: bs}},
	}
	for _, sh := range shapes {
		g := sh.g
		t.Run(sh.name, func(t *testing.T) {
			vol := Volume(11, g, 0.25, 0.25)

			t.Run("write and read back", func(t *testing.T) {
				snk := s.Open(t, g)
				if got := snk.Geometry(); got != g {
					t.Fatalf("Geometry: got %v, want %v", got, g)
				}
				m := writeAll(t, snk, vol)
				if err := snk.Commit(ctx, m); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				s.expect(t, snk, vol, "after Commit")
				if err := snk.Close(); err != nil {
					t.Fatalf("Close after Commit: %v", err)
				}
			})

			t.Run("bad writes", func(t *testing.T) {
				snk := s.Open(t, g)
				defer snk.Close()
				last := g.Blocks() - 1
				for _, tc := range []struct {
					index int64
					n     int
					is    error
				}{
					{-1, g.BlockSize, blockdiff.ErrOutOfRange},
					{g.Blocks(), g.BlockSize, blockdiff.ErrOutOfRange},
					{0, g.BlockSize - 1, nil},
					{0, g.BlockSize + 1, nil},
					{last, g.BlockLen(last) + 1, nil},
				} {
					data := bytes.Repeat([]byte{0xAB}, tc.n)
					err := snk.WriteBlock(ctx, tc.index, data, sha256.Sum256(data))
					if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
						t.Errorf("WriteBlock(%d, %d bytes) of %d blocks: got %v, want an error (wrapping %v)", tc.index, tc.n, g.Blocks(), err, tc.is)
					}
				}
				if r, ok := snk.(blockdiff.Source); ok {
					for _, i := range []int64{-1, g.Blocks()} {
						if _, err := r.ReadBlock(ctx, i, make([]byte, g.BlockSize)); !errors.Is(err, blockdiff.ErrOutOfRange) {
							t.Errorf("ReadBlock(%d) of %d blocks: got %v, want ErrOutOfRange", i, g.Blocks(), err)
						}
					}
				}
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				data := blockOf(vol, g, 0)
				if err := snk.WriteBlock(cctx, 0, data, sha256.Sum256(data)); !errors.Is(err, context.Canceled) {
					t.Errorf("WriteBlock with a cancelled context: got %v, want context.Canceled", err)
				}
			})

			t.Run("zero", func(t *testing.T) {
				snk := s.Open(t, g)
				z, ok := snk.(blockdiff.Zeroer)
				if !ok {
					snk.Close()
					t.Skip("sink does not implement blockdiff.Zeroer")
				}
				m := writeAll(t, snk, vol)
				want := bytes.Clone(vol)
				n := g.Blocks()
				for _, e := range []blockdiff.Extent{{First: 1, Count: 3}, {First: n - 1, Count: 1}, {First: 6, Count: 0}} {
					if err := z.ZeroBlocks(ctx, e); err != nil {
						t.Fatalf("ZeroBlocks(%+v): %v", e, err)
					}
					for i := e.First; i < e.End(); i++ {
						clear(blockOf(want, g, i))
						if err := m.Set(i, blockdiff.Zero, blockdiff.Digest{}); err != nil {
							t.Fatal(err)
						}
					}
				}
				for _, e := range []blockdiff.Extent{{First: n - 1, Count: 2}, {First: -1, Count: 1}, {First: n, Count: 1}} {
					if err := z.ZeroBlocks(ctx, e); !errors.Is(err, blockdiff.ErrOutOfRange) {
						t.Errorf("ZeroBlocks(%+v) of %d blocks: got %v, want ErrOutOfRange", e, n, err)
					}
				}
				if err := snk.Commit(ctx, m); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				s.expect(t, snk, want, "after ZeroBlocks")
				if err := z.ZeroBlocks(ctx, blockdiff.Extent{First: 0, Count: 1}); !errors.Is(err, blockdiff.ErrClosed) {
					t.Errorf("ZeroBlocks after Commit: got %v, want ErrClosed", err)
				}
				snk.Close()
			})

			t.Run("copy", func(t *testing.T) {
				snk := s.Open(t, g)
				c, ok := snk.(blockdiff.Copier)
				if !ok {
					snk.Close()
					t.Skip("sink does not implement blockdiff.Copier")
				}
				m := writeAll(t, snk, vol)
				want := bytes.Clone(vol)
				for _, p := range [][2]int64{{0, 2}, {5, 0}, {3, 3}} { // dst, src
					if err := c.CopyBlock(ctx, p[0], p[1]); err != nil {
						t.Fatalf("CopyBlock(%d, %d): %v", p[0], p[1], err)
					}
					copy(blockOf(want, g, p[0]), blockOf(want, g, p[1]))
					e := m.Entry(p[1])
					if err := m.Set(p[0], e.Kind, e.Digest); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.CopyBlock(ctx, 0, g.Blocks()); !errors.Is(err, blockdiff.ErrOutOfRange) {
					t.Errorf("CopyBlock from past the end: got %v, want ErrOutOfRange", err)
				}
				if err := c.CopyBlock(ctx, g.Blocks(), 0); !errors.Is(err, blockdiff.ErrOutOfRange) {
					t.Errorf("CopyBlock to past the end: got %v, want ErrOutOfRange", err)
				}
				if err := snk.Commit(ctx, m); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				s.expect(t, snk, want, "after CopyBlock")
				snk.Close()
			})

			t.Run("concurrent writes", func(t *testing.T) {
				snk := s.Open(t, g)
				m, err := blockdiff.NewManifest(g)
				if err != nil {
					t.Fatal(err)
				}
				const workers = 6
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := range workers {
					wg.Go(func() {
						for i := int64(w); i < g.Blocks(); i += workers {
							b := blockOf(vol, g, i)
							d := sha256.Sum256(b)
							if isZero(b) {
								continue
							}
							if err := snk.WriteBlock(ctx, i, b, d); err != nil {
								errs <- fmt.Errorf("WriteBlock(%d): %w", i, err)
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				fillManifest(t, m, vol)
				if err := snk.Commit(ctx, m); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				s.expect(t, snk, vol, "after concurrent writes")
				snk.Close()
			})

			t.Run("commit seals", func(t *testing.T) {
				snk := s.Open(t, g)
				m := writeAll(t, snk, vol)
				if err := snk.Commit(ctx, m); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				data := blockOf(vol, g, 0)
				if err := snk.WriteBlock(ctx, 0, data, sha256.Sum256(data)); !errors.Is(err, blockdiff.ErrClosed) {
					t.Errorf("WriteBlock after Commit: got %v, want ErrClosed", err)
				}
				if err := snk.Close(); err != nil {
					t.Errorf("Close after Commit: %v", err)
				}
				if err := snk.WriteBlock(ctx, 0, data, sha256.Sum256(data)); !errors.Is(err, blockdiff.ErrClosed) {
					t.Errorf("WriteBlock after Close: got %v, want ErrClosed", err)
				}
			})

			t.Run("close without commit", func(t *testing.T) {
				snk := s.Open(t, g)
				data := blockOf(vol, g, 1)
				if isZero(data) {
					data = bytes.Repeat([]byte{1}, len(data))
				}
				if err := snk.WriteBlock(ctx, 1, data, sha256.Sum256(data)); err != nil {
					t.Fatalf("WriteBlock: %v", err)
				}
				if err := snk.Close(); err != nil {
					t.Fatalf("Close without Commit: %v", err)
				}
				if err := snk.WriteBlock(ctx, 2, data, sha256.Sum256(data)); !errors.Is(err, blockdiff.ErrClosed) {
					t.Errorf("WriteBlock after Close: got %v, want ErrClosed", err)
				}
				if err := snk.Commit(ctx, nil); err == nil {
					t.Errorf("Commit after Close: got nil error")
				}
			})
		})
	}
}

// expect checks that snk holds want.
func (s SinkSuite) expect(t *testing.T, snk blockdiff.Sink, want []byte, when string) {
	t.Helper()
	g := snk.Geometry()
	if s.ReadBack != nil {
		got := s.ReadBack(t, snk)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: read back %d bytes, want %d; first difference at byte %d", when, len(got), len(want), firstDiff(got, want))
		}
		return
	}
	r, ok := snk.(blockdiff.Source)
	if !ok {
		t.Fatalf("%s: sink %T is not a blockdiff.Source and SinkSuite.ReadBack is nil", when, snk)
	}
	buf := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		n, err := r.ReadBlock(context.Background(), i, buf)
		if err != nil {
			t.Fatalf("%s: ReadBlock(%d): %v", when, i, err)
		}
		if w := blockOf(want, g, i); n != len(w) || !bytes.Equal(buf[:n], w) {
			t.Fatalf("%s: block %d differs (n=%d, want %d)", when, i, n, len(w))
		}
	}
}

// writeAll writes every non-zero block of vol to snk and returns the
// volume's manifest.
func writeAll(t *testing.T, snk blockdiff.Sink, vol []byte) *blockdiff.Manifest {
	t.Helper()
	g := snk.Geometry()
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Blocks() {
		b := blockOf(vol, g, i)
		if isZero(b) {
			continue
		}
		if err := snk.WriteBlock(context.Background(), i, b, sha256.Sum256(b)); err != nil {
			t.Fatalf("WriteBlock(%d): %v", i, err)
		}
	}
	fillManifest(t, m, vol)
	return m
}

// fillManifest records vol's blocks in m: data blocks with their SHA-256,
// zero blocks as Zero.
func fillManifest(t *testing.T, m *blockdiff.Manifest, vol []byte) {
	t.Helper()
	g := m.Geometry()
	for i := range g.Blocks() {
		b := blockOf(vol, g, i)
		k := blockdiff.Data
		if isZero(b) {
			k = blockdiff.Zero
		}
		if err := m.Set(i, k, sha256.Sum256(b)); err != nil {
			t.Fatal(err)
		}
	}
}
