package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// The test volume: 64 blocks, zero blocks 3, 10, 11. The new version
// changes 5, 6, 20; blocks 30 and 31 copy new block 5 (dedupe), block 40
// becomes zero, block 50 takes old block 2's content (local copy).
const nBlocks = 64

var (
	oldData = volume(1, nBlocks, []int{3, 10, 11})
	newData = func() []byte {
		b := mutate(oldData, 5, 6, 20)
		copy(b[30*testBS:31*testBS], b[5*testBS:6*testBS])
		copy(b[31*testBS:32*testBS], b[5*testBS:6*testBS])
		clear(b[40*testBS : 41*testBS])
		copy(b[50*testBS:51*testBS], oldData[2*testBS:3*testBS])
		return b
	}()
)

func TestRunPlans(t *testing.T) {
	type want struct {
		plan                                                 PlanKind
		written, zeroed, dedup, copied, refs, unchanged, zsk int64
		reads                                                int64 // source ReadBlock calls, -1 = don't check
		bytes                                                int64 // Stats.BytesWritten: data blocks sent with WriteBlock
	}
	changed := []blockdiff.Extent{{First: 5, Count: 2}, {First: 20, Count: 1}, {First: 30, Count: 2}, {First: 40, Count: 1}, {First: 50, Count: 1}}
	cases := []struct {
		name string
		src  func(blockdiff.Source) blockdiff.Source
		dst  func(t *testing.T) (blockdiff.Sink, *sink.Memory)
		base func(t *testing.T) *blockdiff.Manifest
		opts Options
		want want
	}{
		{
			name: "hash-base",
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			base: func(t *testing.T) *blockdiff.Manifest { return manifestOf(t, oldData) },
			want: want{plan: PlanHashBase, written: 6, zeroed: 1, unchanged: 57, reads: nBlocks, bytes: 6 * testBS},
		},
		{
			name: "live-target",
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			want: want{plan: PlanLiveTarget, written: 6, zeroed: 1, unchanged: 57, reads: nBlocks, bytes: 6 * testBS},
		},
		{
			name: "full, sink without Zeroer writes zeros",
			dst: func(t *testing.T) (blockdiff.Sink, *sink.Memory) {
				m := prefilled(t, oldData)
				return writeOnly{m}, m
			},
			want: want{plan: PlanFull, written: 60, zeroed: 4, reads: nBlocks, bytes: 60 * testBS},
		},
		{
			name: "full, fresh sink skips zeros",
			dst: func(t *testing.T) (blockdiff.Sink, *sink.Memory) {
				m := prefilled(t, make([]byte, len(oldData)))
				return freshWriteOnly{writeOnly{m}}, m
			},
			want: want{plan: PlanFull, written: 60, zsk: 4, reads: nBlocks, bytes: 60 * testBS},
		},
		{
			name: "full, fresh sink but ZeroAlways",
			dst: func(t *testing.T) (blockdiff.Sink, *sink.Memory) {
				m := prefilled(t, oldData)
				return freshWriteOnly{writeOnly{m}}, m
			},
			opts: Options{Zero: ZeroAlways},
			want: want{plan: PlanFull, written: 60, zeroed: 4, reads: nBlocks, bytes: 60 * testBS},
		},
		{
			name: "manifest with copier",
			src:  func(s blockdiff.Source) blockdiff.Source { return manifestSource{s, manifestOf(t, newData)} },
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			base: func(t *testing.T) *blockdiff.Manifest { return manifestOf(t, oldData) },
			want: want{plan: PlanManifest, written: 3, dedup: 2, copied: 1, zeroed: 1, unchanged: 57, reads: 3, bytes: 5 * testBS},
		},
		{
			name: "live-manifest",
			src:  func(s blockdiff.Source) blockdiff.Source { return manifestSource{s, manifestOf(t, newData)} },
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			want: want{plan: PlanLiveManifest, written: 3, dedup: 2, copied: 1, zeroed: 1, unchanged: 57, reads: 3, bytes: 5 * testBS},
		},
		{
			name: "manifest without copier",
			src:  func(s blockdiff.Source) blockdiff.Source { return manifestSource{s, manifestOf(t, newData)} },
			dst: func(t *testing.T) (blockdiff.Sink, *sink.Memory) {
				m := prefilled(t, oldData)
				return zeroOnly{writeOnly{m}, m}, m
			},
			base: func(t *testing.T) *blockdiff.Manifest { return manifestOf(t, oldData) },
			want: want{plan: PlanManifest, written: 4, dedup: 2, zeroed: 1, unchanged: 57, reads: 4, bytes: 6 * testBS},
		},
		{
			name: "manifest with a store that holds one content",
			src:  func(s blockdiff.Source) blockdiff.Source { return manifestSource{s, manifestOf(t, newData)} },
			dst: func(t *testing.T) (blockdiff.Sink, *sink.Memory) {
				m := prefilled(t, oldData)
				b6 := newData[6*testBS : 7*testBS]
				return refSink{writeOnly{m}, m, map[blockdiff.Digest][]byte{sum256(b6): b6}}, m
			},
			base: func(t *testing.T) *blockdiff.Manifest { return manifestOf(t, oldData) },
			want: want{plan: PlanManifest, written: 3, dedup: 2, refs: 1, zeroed: 1, unchanged: 57, reads: 3, bytes: 5 * testBS},
		},
		{
			name: "change-list",
			src:  func(s blockdiff.Source) blockdiff.Source { return changeSource{s, changed} },
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			base: func(t *testing.T) *blockdiff.Manifest {
				m := manifestOf(t, oldData)
				m.Origin = "test:v1"
				return m
			},
			want: want{plan: PlanChangeList, written: 6, zeroed: 1, unchanged: 57, reads: 7, bytes: 6 * testBS},
		},
		{
			name: "change-list unrelated falls back to hash-base",
			src:  func(s blockdiff.Source) blockdiff.Source { return changeSource{s, changed} },
			dst:  func(t *testing.T) (blockdiff.Sink, *sink.Memory) { m := prefilled(t, oldData); return m, m },
			base: func(t *testing.T) *blockdiff.Manifest {
				m := manifestOf(t, oldData)
				m.Origin = "test:v0"
				return m
			},
			want: want{plan: PlanHashBase, written: 6, zeroed: 1, unchanged: 57, reads: nBlocks, bytes: 6 * testBS},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCounting(memSource(t, newData))
			var src blockdiff.Source = cs
			if tc.src != nil {
				src = tc.src(cs)
			}
			dst, mem := tc.dst(t)
			opts := tc.opts
			opts.Concurrency = 3
			if tc.base != nil {
				opts.Base = tc.base(t)
			}
			res, err := Run(context.Background(), src, dst, opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			s := res.Stats
			if res.Plan != tc.want.plan {
				t.Errorf("plan: got %s, want %s", res.Plan, tc.want.plan)
			}
			got := want{res.Plan, s.Written, s.Zeroed, s.Deduplicated, s.CopiedLocal, s.Referenced, s.SkippedUnchanged, s.SkippedZero, tc.want.reads, s.BytesWritten}
			if tc.want.reads >= 0 {
				got.reads = cs.reads.Load()
			}
			if got != tc.want {
				t.Errorf("stats: got %+v, want %+v", got, tc.want)
			}
			if tot := statsTotal(s); tot != nBlocks || s.Planned != nBlocks {
				t.Errorf("blocks accounted: got %d of planned %d, want %d", tot, s.Planned, nBlocks)
			}
			if !bytes.Equal(mem.Bytes(), newData) {
				t.Errorf("target differs from the source")
			}
			if !mem.Committed() {
				t.Errorf("target not committed")
			}
			if !res.Manifest.Equal(manifestOf(t, newData)) {
				t.Errorf("result manifest does not describe the source")
			}
			if tc.want.plan == PlanChangeList && res.Manifest.Origin != "test:v2" {
				t.Errorf("manifest origin: got %q, want %q", res.Manifest.Origin, "test:v2")
			}
		})
	}
}

// TestRunIncrementalTwice: a second run with the first run's manifest as
// Base writes nothing.
func TestRunIncrementalTwice(t *testing.T) {
	src := memSource(t, newData)
	g := src.Geometry()
	dst1, _ := sink.NewMemory(g)
	r1, err := Run(context.Background(), src, dst1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst2 := prefilled(t, dst1.Bytes())
	r2, err := Run(context.Background(), src, dst2, Options{Base: r1.Manifest})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Stats.Written != 0 || r2.Stats.Zeroed != 0 || r2.Stats.SkippedUnchanged != nBlocks {
		t.Errorf("second run: got written %d zeroed %d unchanged %d, want 0 0 %d", r2.Stats.Written, r2.Stats.Zeroed, r2.Stats.SkippedUnchanged, nBlocks)
	}
	if w := dst2.Writes() - nBlocks; w != 0 { // prefilled wrote nBlocks
		t.Errorf("second run sink writes: got %d, want 0", w)
	}
	if _, err := json.Marshal(r2); err != nil {
		t.Errorf("result does not marshal: %v", err)
	}
}

// TestRunHolesNeverRead: a sparse source's holes are not read; on a full
// copy they are zeroed by default and skipped with ZeroSkipHoles.
func TestRunHolesNeverRead(t *testing.T) {
	data := volume(3, nBlocks, []int{0, 1, 2, 3, 40, 41, 63})
	holes := []blockdiff.Extent{{First: 0, Count: 4}, {First: 40, Count: 2}, {First: 63, Count: 1}}
	for _, tc := range []struct {
		policy             ZeroPolicy
		zeroed, skippedZer int64
	}{
		{ZeroAuto, 7, 0},
		{ZeroSkipHoles, 0, 7},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			sm, err := source.NewSparseMemory(data, testBS, holes)
			if err != nil {
				t.Fatal(err)
			}
			cs := newCounting(sm)
			dst := prefilled(t, oldData) // stale content: holes must be zeroed unless skipped
			res, err := Run(context.Background(), extentCounting{cs, sm}, writeOnlyZeroer(dst), Options{Zero: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range holes {
				for i := h.First; i < h.End(); i++ {
					if cs.seen[i].Load() {
						t.Errorf("hole block %d was read", i)
					}
				}
			}
			if got := cs.reads.Load(); got != nBlocks-7 {
				t.Errorf("reads: got %d, want %d", got, nBlocks-7)
			}
			if res.Stats.Zeroed != tc.zeroed || res.Stats.SkippedZero != tc.skippedZer {
				t.Errorf("zeroed %d skipped %d, want %d %d", res.Stats.Zeroed, res.Stats.SkippedZero, tc.zeroed, tc.skippedZer)
			}
			if tc.policy == ZeroAuto && !bytes.Equal(dst.Bytes(), data) {
				t.Errorf("target differs from the source")
			}
		})
	}
}

// changeSparse is a changeSource that also reports holes.
type changeSparse struct {
	changeSource
	x blockdiff.Extenter
}

func (c changeSparse) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	return c.x.Extents(ctx, fn)
}

// TestChangeListHoles: listed blocks in the source's holes are not read;
// they are zeroed where the base had data.
func TestChangeListHoles(t *testing.T) {
	holes := []blockdiff.Extent{{First: 3, Count: 1}, {First: 10, Count: 2}, {First: 40, Count: 1}}
	sm, err := source.NewSparseMemory(newData, testBS, holes)
	if err != nil {
		t.Fatal(err)
	}
	cs := newCounting(sm)
	for _, listed := range [][]blockdiff.Extent{
		{{First: 5, Count: 2}, {First: 20, Count: 1}, {First: 30, Count: 2}, {First: 40, Count: 1}, {First: 50, Count: 1}},
		{{First: 2, Count: 5}, {First: 9, Count: 22}, {First: 31, Count: 1}, {First: 39, Count: 25}},
	} {
		cs.reads.Store(0)
		for i := range cs.seen {
			cs.seen[i].Store(false)
		}
		base := manifestOf(t, oldData)
		base.Origin = "test:v1"
		mem := prefilled(t, oldData)
		res, err := Run(context.Background(), changeSparse{changeSource{cs, listed}, sm}, mem, Options{Base: base})
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, x := range listed {
			for i := x.First; i < x.End(); i++ {
				if i != 3 && i != 10 && i != 11 && i != 40 {
					want++
				}
			}
		}
		if got := cs.reads.Load(); got != want || cs.seen[40].Load() || cs.seen[3].Load() {
			t.Errorf("listed %v: got %d reads (block 40 read %v), want %d and no holes", listed, got, cs.seen[40].Load(), want)
		}
		if res.Plan != PlanChangeList || res.Stats.Written != 6 || res.Stats.Zeroed != 1 {
			t.Errorf("listed %v: plan %s written %d zeroed %d, want change-list 6 1", listed, res.Plan, res.Stats.Written, res.Stats.Zeroed)
		}
		if !bytes.Equal(mem.Bytes(), newData) {
			t.Errorf("listed %v: target differs from the source", listed)
		}
	}
}

func (p ZeroPolicy) String() string {
	return [...]string{"auto", "always", "skip-holes", "skip"}[p]
}

func writeOnlyZeroer(m *sink.Memory) blockdiff.Sink { return zeroOnly{writeOnly{m}, m} }

func TestRunErrors(t *testing.T) {
	eio := syscall.EIO
	cases := []struct {
		name      string
		src       blockdiff.Source
		dst       blockdiff.Sink
		opts      Options
		is        error
		side      string
		index     int64
		blockErr  bool
		committed func() bool
	}{
		{name: "unreadable block", src: failSource{memSource(t, newData), 17, eio}, dst: writeOnly{prefilled(t, oldData)},
			is: syscall.EIO, side: "source", index: 17, blockErr: true},
		{name: "disk full", src: memSource(t, newData), dst: &failSink{Sink: writeOnly{prefilled(t, oldData)}, ok: 10, err: syscall.ENOSPC},
			is: syscall.ENOSPC, side: "sink", index: -1, blockErr: true},
		{name: "geometry", src: memSource(t, newData), dst: writeOnly{prefilled(t, newData[:len(newData)/2])}, is: blockdiff.ErrGeometry},
		{name: "verify needs read-back", src: memSource(t, newData), dst: writeOnly{prefilled(t, newData)}, opts: Options{Verify: VerifyAll}},
		{name: "same volume", src: memSource(t, newData), dst: prefilled(t, newData), opts: Options{SourceID: "file:/x", TargetID: "file:/x"}, is: ErrSameVolume},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(context.Background(), tc.src, tc.dst, tc.opts)
			if err == nil {
				t.Fatalf("Run: got result %+v, want an error", res)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q: does not wrap %v", err, tc.is)
			}
			var be *blockdiff.BlockError
			if tc.blockErr {
				if !errors.As(err, &be) {
					t.Fatalf("error %q: not a *blockdiff.BlockError", err)
				}
				if be.Side != tc.side || (tc.index >= 0 && be.Index != tc.index) {
					t.Errorf("block error: got side %q index %d, want %q %d", be.Side, be.Index, tc.side, tc.index)
				}
			}
		})
	}
}

// TestRunVerify: a sink that corrupts a block is caught by VerifyWritten
// and VerifyAll, and the error names the block.
func TestRunVerify(t *testing.T) {
	for _, mode := range []VerifyMode{VerifyWritten, VerifyAll} {
		t.Run(mode.String(), func(t *testing.T) {
			mem := prefilled(t, oldData)
			_, err := Run(context.Background(), memSource(t, newData), corruptSink{mem, 20}, Options{Verify: mode, Base: manifestOf(t, oldData)})
			var be *blockdiff.BlockError
			if !errors.Is(err, blockdiff.ErrChecksum) || !errors.As(err, &be) || be.Index != 20 {
				t.Fatalf("got %v, want a checksum error at block 20", err)
			}
			if mem.Committed() {
				t.Errorf("target committed despite a failed verification")
			}
		})
	}
	t.Run("clean", func(t *testing.T) {
		res, err := Run(context.Background(), memSource(t, newData), prefilled(t, oldData), Options{Verify: VerifyWritten, Base: manifestOf(t, oldData)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Verified != 7 {
			t.Errorf("verified: got %d, want 7", res.Stats.Verified)
		}
	})
}

func TestVerify(t *testing.T) {
	bad := mutate(newData, 9, 33, 60)
	for _, tc := range []struct {
		name     string
		data     []byte
		max      int
		count    int64
		listed   []int64
		wantErrs bool
	}{
		{"clean", newData, 0, 0, nil, false},
		{"three bad", bad, 0, 3, []int64{9, 33, 60}, true},
		{"list bounded", bad, 2, 3, []int64{9, 33}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(context.Background(), memSource(t, tc.data), manifestOf(t, newData), VerifyOptions{MaxMismatches: tc.max, Concurrency: 4})
			if (err != nil) != tc.wantErrs {
				t.Fatalf("Verify error: got %v, want error %v", err, tc.wantErrs)
			}
			if tc.wantErrs && !errors.Is(err, blockdiff.ErrChecksum) {
				t.Errorf("error %v does not wrap ErrChecksum", err)
			}
			var idx []int64
			for _, m := range res.Mismatches {
				idx = append(idx, m.Index)
			}
			if res.Mismatched != tc.count || res.Checked != nBlocks || !equalInts(idx, tc.listed) {
				t.Errorf("got mismatched %d checked %d listed %v, want %d %d %v", res.Mismatched, res.Checked, idx, tc.count, nBlocks, tc.listed)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRunProgress: events come from one goroutine, counters only grow, and
// the last one of the copy phase is final and complete.
func TestRunProgress(t *testing.T) {
	var mu sync.Mutex
	var evs []Event
	_, err := Run(context.Background(), memSource(t, newData), prefilled(t, oldData), Options{
		Base: manifestOf(t, oldData), ProgressInterval: 1,
		Progress: func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 2 {
		t.Fatalf("got %d events, want several", len(evs))
	}
	last := evs[len(evs)-1]
	if !last.Final || last.DoneBlocks != nBlocks || last.WrittenBlocks != 7 || last.SkippedBlocks != 57 || last.Phase != "copy" {
		t.Errorf("final event %+v: want final, 64 done, 7 written, 57 skipped", last)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].DoneBlocks < evs[i-1].DoneBlocks {
			t.Errorf("event %d: done went back from %d to %d", i, evs[i-1].DoneBlocks, evs[i].DoneBlocks)
		}
	}
}

// TestRunCancel: a cancelled run returns the context's error, promptly.
func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Run(ctx, memSource(t, newData), writeOnly{prefilled(t, oldData)}, Options{
		ProgressInterval: 1,
		Progress: func(Event) {
			if n++; n == 3 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestRunAllocs pins that the steady state does not allocate per block.
func TestRunAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are not meaningful under -race or needed in -short")
	}
	allocs := func(blocks int) float64 {
		data := volume(7, blocks, nil)
		src := memSource(t, data)
		g := src.Geometry()
		return testing.AllocsPerRun(5, func() {
			dst, _ := sink.NewMemory(g)
			if _, err := Run(context.Background(), src, dst, Options{Concurrency: 2}); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(256), allocs(4096)
	t.Logf("allocations per run: %v for 256 blocks, %v for 4096 blocks", small, large)
	if large-small > 8 {
		t.Errorf("allocations grow with block count: got %v for 256 blocks and %v for 4096, want a difference of at most 8", small, large)
	}
}
