package replicate

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

const testBS = 4096

// volume returns n blocks of seeded random data in which the blocks listed
// in zero are all zeros and each block in dup[i] copies block dup[i][0].
func volume(seed uint64, n int, zero []int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n*testBS)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for _, z := range zero {
		clear(b[z*testBS : (z+1)*testBS])
	}
	return b
}

// mutate returns a copy of old with the given blocks overwritten by new
// random content (seeded by the block index).
func mutate(old []byte, blocks ...int) []byte {
	b := bytes.Clone(old)
	for _, i := range blocks {
		r := rand.New(rand.NewPCG(uint64(i), 99))
		for j := i * testBS; j < (i+1)*testBS && j < len(b); j++ {
			b[j] = byte(r.Uint32())
		}
	}
	return b
}

func memSource(t testing.TB, data []byte) *source.Memory {
	t.Helper()
	s, err := source.NewMemory(data, testBS)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prefilled returns a memory sink already holding data (written, not
// committed), as a target left by an earlier run.
func prefilled(t testing.TB, data []byte) *sink.Memory {
	t.Helper()
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: testBS}
	m, err := sink.NewMemory(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < g.Blocks(); i++ {
		b := data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
		if err := m.WriteBlock(context.Background(), i, b, sum256(b)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// manifestOf hashes data into a manifest (zero blocks as Zero).
func manifestOf(t testing.TB, data []byte) *blockdiff.Manifest {
	t.Helper()
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: testBS}
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < g.Blocks(); i++ {
		b := data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
		k, d := blockdiff.Data, sum256(b)
		if isZero(b) {
			k = blockdiff.Zero
		}
		if err := m.Set(i, k, d); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// writeOnly hides every optional capability of a sink (no read-back, no
// Zeroer, no Copier).
type writeOnly struct{ s blockdiff.Sink }

func (w writeOnly) Geometry() blockdiff.Geometry { return w.s.Geometry() }
func (w writeOnly) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	return w.s.WriteBlock(ctx, i, b, d)
}
func (w writeOnly) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	return w.s.Commit(ctx, m)
}
func (w writeOnly) Close() error { return w.s.Close() }

// freshWriteOnly is a writeOnly sink that declares UnwrittenZero.
type freshWriteOnly struct{ writeOnly }

func (freshWriteOnly) UnwrittenZero() bool { return true }

// zeroOnly is a write-only sink with a Zeroer.
type zeroOnly struct {
	writeOnly
	z blockdiff.Zeroer
}

func (z zeroOnly) ZeroBlocks(ctx context.Context, e blockdiff.Extent) error {
	return z.z.ZeroBlocks(ctx, e)
}

// countingSource counts ReadBlock calls and the indices read.
type countingSource struct {
	blockdiff.Source
	reads atomic.Int64
	seen  []atomic.Bool
}

func newCounting(s blockdiff.Source) *countingSource {
	return &countingSource{Source: s, seen: make([]atomic.Bool, s.Geometry().Blocks())}
}

func (c *countingSource) ReadBlock(ctx context.Context, i int64, buf []byte) (int, error) {
	c.reads.Add(1)
	c.seen[i].Store(true)
	return c.Source.ReadBlock(ctx, i, buf)
}

// extentCounting is a countingSource that forwards Extents.
type extentCounting struct {
	*countingSource
	x blockdiff.Extenter
}

func (e extentCounting) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	return e.x.Extents(ctx, fn)
}

// manifestSource is a source whose manifest is known (plan "manifest").
type manifestSource struct {
	blockdiff.Source
	m *blockdiff.Manifest
}

func (s manifestSource) Manifest(context.Context) (*blockdiff.Manifest, error) { return s.m, nil }

// changeSource lists its changes since "test:v1" (plan "change-list").
type changeSource struct {
	blockdiff.Source
	changed []blockdiff.Extent
}

func (changeSource) ID() string { return "test:v2" }

func (s changeSource) ChangesSince(ctx context.Context, base string, fn func(blockdiff.Extent) error) error {
	if base != "test:v1" {
		return blockdiff.ErrUnrelated
	}
	for _, e := range s.changed {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// failSource fails ReadBlock of one index with err.
type failSource struct {
	blockdiff.Source
	at  int64
	err error
}

func (f failSource) ReadBlock(ctx context.Context, i int64, buf []byte) (int, error) {
	if i == f.at {
		return 0, f.err
	}
	return f.Source.ReadBlock(ctx, i, buf)
}

// failSink fails the WriteBlock calls after the first ok ones with err.
type failSink struct {
	blockdiff.Sink
	ok    int64
	calls atomic.Int64
	err   error
}

func (f *failSink) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	if f.calls.Add(1) > f.ok {
		return f.err
	}
	return f.Sink.WriteBlock(ctx, i, b, d)
}

// corruptSink writes a flipped byte into one block, as a bad disk would.
type corruptSink struct {
	*sink.Memory
	at int64
}

func (c corruptSink) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	if i == c.at {
		b = bytes.Clone(b)
		b[0] ^= 0xff
	}
	return c.Memory.WriteBlock(ctx, i, b, d)
}

func statsTotal(s Stats) int64 {
	return s.Written + s.Zeroed + s.SkippedUnchanged + s.SkippedZero + s.Deduplicated + s.CopiedLocal + s.Referenced + s.Resumed
}

// refSink is a write-only sink over a memory volume that also knows some
// contents by digest, as a content-addressed store does (Haser +
// Referencer).
type refSink struct {
	writeOnly
	mem   *sink.Memory
	known map[blockdiff.Digest][]byte
}

func (r refSink) HasDigests(_ context.Context, ds []blockdiff.Digest, has []bool) error {
	for i, d := range ds {
		_, has[i] = r.known[d]
	}
	return nil
}

func (r refSink) WriteRef(ctx context.Context, i int64, d blockdiff.Digest) error {
	return r.mem.WriteBlock(ctx, i, r.known[d], d)
}
