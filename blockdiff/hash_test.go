package blockdiff_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/source"
)

// memSource is a tiny in-memory Source for these tests. Reads of indices
// in fail return that error; every read is counted.
type memSource struct {
	geom  blockdiff.Geometry
	data  []byte
	fail  map[int64]error
	short map[int64]bool // return one byte less than asked
	reads atomic.Int64
	block func(ctx context.Context, i int64) // called before each read, if set
}

func (s *memSource) Geometry() blockdiff.Geometry { return s.geom }

func (s *memSource) ReadBlock(ctx context.Context, i int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.block != nil {
		s.block(ctx, i)
	}
	s.reads.Add(1)
	if err := s.fail[i]; err != nil {
		return 0, err
	}
	n := s.geom.BlockLen(i)
	if n == 0 {
		return 0, fmt.Errorf("memsource: block %d: %w", i, blockdiff.ErrOutOfRange)
	}
	off := s.geom.Offset(i)
	copy(buf[:n], s.data[off:off+int64(n)])
	if s.short[i] {
		n--
	}
	return n, nil
}

// extSource adds Extents: only the listed runs may hold data.
type extSource struct {
	*memSource
	extents []blockdiff.Extent
	err     error // returned after the extents
}

func (s *extSource) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	for _, e := range s.extents {
		if err := fn(e); err != nil {
			return err
		}
	}
	return s.err
}

var _ blockdiff.Extenter = (*extSource)(nil)

// newVolume returns random data of size bytes in blocks of bs, with the
// blocks listed in zero set to zeros.
func newVolume(seed uint64, size int64, bs int, zero ...int64) *memSource {
	r := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	g := blockdiff.Geometry{Size: size, BlockSize: bs}
	for _, i := range zero {
		off := g.Offset(i)
		clear(data[off : off+int64(g.BlockLen(i))])
	}
	return &memSource{geom: g, data: data}
}

// wantEntry computes block i's entry independently with crypto/sha256.
func wantEntry(s *memSource, i int64) blockdiff.Entry {
	off := s.geom.Offset(i)
	b := s.data[off : off+int64(s.geom.BlockLen(i))]
	k := blockdiff.Data
	if bytes.Count(b, []byte{0}) == len(b) {
		k = blockdiff.Zero
	}
	return blockdiff.Entry{Index: i, Kind: k, Digest: sha256.Sum256(b)}
}

func TestHashSourceMatchesSHA256(t *testing.T) {
	const bs = 4096
	src := newVolume(1, 100*bs+123, bs, 0, 5, 6, 99, 100) // 101 blocks, short last one zero
	var first *blockdiff.Manifest
	for _, opts := range []blockdiff.HashOptions{
		{Concurrency: 1},
		{Concurrency: 1, Buffers: 1},
		{Concurrency: 2},
		{Concurrency: 7, Buffers: 9},
		{},
	} {
		t.Run(fmt.Sprintf("conc=%d/buffers=%d", opts.Concurrency, opts.Buffers), func(t *testing.T) {
			m, err := blockdiff.HashSource(context.Background(), src, opts)
			if err != nil {
				t.Fatalf("HashSource: %v", err)
			}
			if got, want := m.Len(), src.geom.Blocks(); got != want {
				t.Fatalf("Len: got %d, want %d", got, want)
			}
			for i := range m.Len() {
				if got, want := m.Entry(i), wantEntry(src, i); got != want {
					t.Errorf("block %d: got %v %x, want %v %x", i, got.Kind, got.Digest, want.Kind, want.Digest)
				}
			}
			data, zero, hole := m.Counts()
			if data != 96 || zero != 5 || hole != 0 {
				t.Errorf("Counts: got data %d zero %d hole %d, want 96 5 0", data, zero, hole)
			}
			if first == nil {
				first = m
			} else if !first.Equal(m) {
				t.Errorf("manifest differs from the one hashed with Concurrency 1")
			}
		})
	}
}

func TestHashSourceShortLastBlock(t *testing.T) {
	for _, size := range []int64{1, 4095, 4097, 3*4096 + 55, 3*4096 + 64} {
		src := newVolume(uint64(size), size, 4096)
		m, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{Concurrency: 2})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		last := m.Len() - 1
		if got, want := m.Entry(last), wantEntry(src, last); got != want {
			t.Errorf("size %d, last block %d: got %x, want %x", size, last, got.Digest, want.Digest)
		}
	}
}

func TestHashSourceEmptyVolume(t *testing.T) {
	src := &memSource{geom: blockdiff.Geometry{Size: 0, BlockSize: 4096}}
	calls := 0
	err := blockdiff.HashEntries(context.Background(), src, blockdiff.HashOptions{}, func(blockdiff.Entry) error { calls++; return nil })
	if err != nil || calls != 0 {
		t.Errorf("empty volume: got %d entries, err %v; want 0, nil", calls, err)
	}
}

// TestHashSourceHolesNotRead: blocks outside the extents fail if read, so
// the test fails if any hole is read.
func TestHashSourceHolesNotRead(t *testing.T) {
	const bs = 4096
	mem := newVolume(2, 50*bs+100, bs, 12) // 51 blocks; block 12 zero but inside an extent
	mem.fail = map[int64]error{}
	extents := []blockdiff.Extent{{First: 3, Count: 4}, {First: 10, Count: 20}, {First: 40, Count: 2}, {First: 49, Count: 100}}
	in := map[int64]bool{}
	for _, e := range extents {
		for i := e.First; i < min(e.End(), 51); i++ {
			in[i] = true
		}
	}
	for i := range int64(51) {
		if !in[i] {
			mem.fail[i] = fmt.Errorf("hole %d was read", i)
			off := mem.geom.Offset(i)
			clear(mem.data[off : off+int64(mem.geom.BlockLen(i))]) // holes read as zeros
		}
	}
	src := &extSource{memSource: mem, extents: extents}
	for _, conc := range []int{1, 3} {
		mem.reads.Store(0)
		var got []blockdiff.Entry
		err := blockdiff.HashEntries(context.Background(), src, blockdiff.HashOptions{Concurrency: conc}, func(e blockdiff.Entry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatalf("conc %d: %v", conc, err)
		}
		if len(got) != 51 {
			t.Fatalf("conc %d: got %d entries, want 51", conc, len(got))
		}
		for i, e := range got {
			want := wantEntry(mem, int64(i))
			if !in[int64(i)] {
				want.Kind = blockdiff.Hole
			}
			if e != want {
				t.Errorf("conc %d, entry %d: got %d %v %x, want %d %v %x", conc, i, e.Index, e.Kind, e.Digest, want.Index, want.Kind, want.Digest)
			}
		}
		if got, want := mem.reads.Load(), int64(len(in)); got != want {
			t.Errorf("conc %d: got %d reads, want %d (extent blocks only)", conc, got, want)
		}
	}
	// HashSource on the same source agrees.
	m, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, zero, hole := m.Counts(); zero != 1 || hole != int64(51-len(in)) {
		t.Errorf("Counts: got zero %d hole %d, want 1 %d", zero, hole, 51-len(in))
	}
}

func TestHashSourceExtentsError(t *testing.T) {
	errList := errors.New("seek_data failed")
	src := &extSource{newVolume(10, 40*4096, 4096), []blockdiff.Extent{{First: 0, Count: 30}}, errList}
	for range 20 { // the error races with the entries already emitted
		_, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{Concurrency: 2})
		if !errors.Is(err, errList) {
			t.Fatalf("got %v, want an error wrapping %v", err, errList)
		}
	}
}

func TestHashSourceReadError(t *testing.T) {
	errDisk := errors.New("disk on fire")
	src := newVolume(3, 64*4096, 4096)
	src.fail = map[int64]error{37: errDisk}
	for _, conc := range []int{1, 4} {
		_, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{Concurrency: conc})
		var be *blockdiff.BlockError
		if !errors.As(err, &be) {
			t.Fatalf("conc %d: got %v, want a *BlockError", conc, err)
		}
		if be.Index != 37 || be.Op != "read" || be.Side != "source" || !errors.Is(err, errDisk) {
			t.Errorf("conc %d: got %+v, want read source block 37 wrapping %v", conc, be, errDisk)
		}
		if want := "source read block 37: disk on fire"; err.Error() != want {
			t.Errorf("conc %d: message: got %q, want %q", conc, err.Error(), want)
		}
	}
}

func TestHashSourceShortRead(t *testing.T) {
	src := newVolume(4, 8*4096, 4096)
	src.short = map[int64]bool{5: true}
	_, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{})
	var be *blockdiff.BlockError
	if !errors.As(err, &be) || be.Index != 5 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want a read error at block 5 wrapping io.ErrUnexpectedEOF", err)
	}
}

func TestHashEntriesCallbackError(t *testing.T) {
	src := newVolume(5, 64*4096, 4096)
	stop := errors.New("enough")
	var last int64
	err := blockdiff.HashEntries(context.Background(), src, blockdiff.HashOptions{Concurrency: 3}, func(e blockdiff.Entry) error {
		if e.Index != last {
			t.Errorf("entry out of order: got index %d, want %d", e.Index, last)
		}
		last++
		if e.Index == 20 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("got %v, want the callback's error as is", err)
	}
	if last != 21 {
		t.Errorf("got %d entries, want 21 (none after the error)", last)
	}
}

func TestHashEntriesCancel(t *testing.T) {
	src := newVolume(6, 256*4096, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	err := blockdiff.HashEntries(ctx, src, blockdiff.HashOptions{Concurrency: 2}, func(e blockdiff.Entry) error {
		n++
		if e.Index == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n >= 256 {
		t.Errorf("got all %d entries after cancel, want fewer", n)
	}

	// A read blocked until the context ends is released by cancellation.
	src.block = func(ctx context.Context, i int64) {
		if i == 3 {
			cancel()
			<-ctx.Done()
		}
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if _, err := blockdiff.HashSource(ctx, src, blockdiff.HashOptions{Concurrency: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("blocked read: got %v, want context.Canceled", err)
	}

	// An already cancelled context reads nothing.
	src.block = nil
	src.reads.Store(0)
	if _, err := blockdiff.HashSource(ctx, src, blockdiff.HashOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
	if r := src.reads.Load(); r != 0 {
		t.Errorf("cancelled context: got %d reads, want 0", r)
	}
}

func TestHashEntriesProgress(t *testing.T) {
	const bs = 4096
	mem := newVolume(7, 30*bs+10, bs)
	src := &extSource{memSource: mem, extents: []blockdiff.Extent{{First: 0, Count: 10}, {First: 20, Count: 11}}}
	var last blockdiff.HashProgress
	calls := 0
	opts := blockdiff.HashOptions{Concurrency: 2, Progress: func(p blockdiff.HashProgress) {
		if p.Blocks < last.Blocks || p.Bytes < last.Bytes {
			t.Errorf("progress went backwards: %+v after %+v", p, last)
		}
		last = p
		calls++
	}}
	if _, err := blockdiff.HashSource(context.Background(), src, opts); err != nil {
		t.Fatal(err)
	}
	want := blockdiff.HashProgress{Blocks: 31, Bytes: 30*bs + 10, Read: 20*bs + 10, Total: 31}
	if last != want {
		t.Errorf("final progress: got %+v, want %+v", last, want)
	}
	if calls < 2 {
		t.Errorf("progress called %d times, want several", calls)
	}
}

func TestHashEntriesLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src := newVolume(11, 10*4096, 4096)
	if _, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{Logger: log}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"blockdiff: hashing source", "blockdiff: hashed source", "blocks=10"} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
}

func TestHashOptionsInvalid(t *testing.T) {
	src := newVolume(8, 4096, 4096)
	for _, opts := range []blockdiff.HashOptions{{Concurrency: -1}, {Buffers: -2}} {
		if _, err := blockdiff.HashSource(context.Background(), src, opts); err == nil {
			t.Errorf("%+v: got no error, want one", opts)
		}
	}
	if err := blockdiff.HashEntries(context.Background(), src, blockdiff.HashOptions{}, nil); err == nil {
		t.Error("nil callback: got no error, want one")
	}
	bad := &memSource{geom: blockdiff.Geometry{Size: 10, BlockSize: 1000}}
	if _, err := blockdiff.HashSource(context.Background(), bad, blockdiff.HashOptions{}); !errors.Is(err, blockdiff.ErrGeometry) {
		t.Errorf("bad geometry: got %v, want ErrGeometry", err)
	}
}

// TestHashEntriesAllocs pins "no per-block allocations": hashing 8 times as
// many blocks must not allocate more.
func TestHashEntriesAllocs(t *testing.T) {
	allocs := func(blocks int64) float64 {
		src := newVolume(9, blocks*4096, 4096, 3)
		opts := blockdiff.HashOptions{Concurrency: 2}
		nop := func(blockdiff.Entry) error { return nil }
		return testing.AllocsPerRun(10, func() {
			if err := blockdiff.HashEntries(context.Background(), src, opts, nop); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(64), allocs(512)
	t.Logf("allocations per call: %v for 64 blocks, %v for 512 blocks", small, large)
	if large > small+2 { // a little slack for scheduler noise, far below one per block
		t.Errorf("allocations grow with block count: got %v for 512 blocks, %v for 64", large, small)
	}
}

func ExampleHashSource() {
	// Three 4 KiB blocks: data, zeros, and a short last block.
	data := make([]byte, 2*4096+100)
	copy(data, "hello, blocks")
	copy(data[2*4096:], "tail")
	src, err := source.NewMemory(data, 4096)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := blockdiff.HashSource(context.Background(), src, blockdiff.HashOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for it := m.Iter(); ; {
		e, err := it.Next()
		if err != nil {
			break
		}
		fmt.Println(e.Index, e.Kind, e.Digest.String()[:16])
	}
	// Output:
	// 0 data 8986a9c85edffc44
	// 1 zero ad7facb2586fc6e9
	// 2 data 74687b1378e9b436
}
