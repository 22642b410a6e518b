package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

// TestShape: workers × lanes buffers never exceed max(1, MaxInFlight /
// BlockSize); concurrency is kept before lanes.
func TestShape(t *testing.T) {
	const bs = 512 << 10
	for _, tc := range []struct {
		conc         int
		maxInFlight  int64
		lanes        int
		workers, per int
	}{
		{conc: 2, maxInFlight: 64 << 20, lanes: 2, workers: 2, per: 2},
		{conc: 16, maxInFlight: 64 << 20, lanes: 16, workers: 16, per: 8},
		{conc: 64, maxInFlight: 64 << 20, lanes: 2, workers: 64, per: 2},
		{conc: 8, maxInFlight: 8 * bs, lanes: 2, workers: 8, per: 1},
		{conc: 8, maxInFlight: 12 * bs, lanes: 2, workers: 8, per: 1},
		{conc: 4, maxInFlight: 12 * bs, lanes: 16, workers: 4, per: 3},
		{conc: 8, maxInFlight: 2 * bs, lanes: 2, workers: 2, per: 1},
		{conc: 8, maxInFlight: 100, lanes: 2, workers: 1, per: 1},
		{conc: 1, maxInFlight: 64 << 20, lanes: 1, workers: 1, per: 1},
	} {
		t.Run(fmt.Sprintf("conc=%d,mif=%d,lanes=%d", tc.conc, tc.maxInFlight, tc.lanes), func(t *testing.T) {
			w, per := shape(tc.conc, tc.maxInFlight, bs, tc.lanes)
			if w != tc.workers || per != tc.per {
				t.Errorf("shape: got %d workers × %d lanes, want %d × %d", w, per, tc.workers, tc.per)
			}
			if limit := max(1, tc.maxInFlight/bs); int64(w*per) > limit {
				t.Errorf("buffers: got %d × %d = %d, want at most %d (MaxInFlight %d)", w, per, w*per, limit, tc.maxInFlight)
			}
		})
	}
}

// TestEnginePoolBound: the engine's pool holds exactly workers × lanes
// buffers, within MaxInFlight.
func TestEnginePoolBound(t *testing.T) {
	src := memSource(t, newData)
	for _, tc := range []struct {
		opts        Options
		buffers     int
		lanesPerBuf int
	}{
		{Options{Concurrency: 3, lanes: 4}, 12, 4},
		{Options{Concurrency: 3, lanes: 4, MaxInFlight: 7 * testBS}, 6, 2},
		{Options{Concurrency: 8, lanes: 2, MaxInFlight: 2 * testBS}, 2, 1},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			e, err := newEngine(src, writeOnly{prefilled(t, oldData)}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range len(e.pool.c) {
				s := <-e.pool.c
				n += len(s.bufs)
				for _, b := range s.bufs {
					if len(b) != testBS {
						t.Errorf("buffer: got %d bytes, want %d", len(b), testBS)
					}
				}
			}
			if n != tc.buffers || e.pool.lanes != tc.lanesPerBuf {
				t.Errorf("pool: got %d buffers, %d per worker; want %d, %d", n, e.pool.lanes, tc.buffers, tc.lanesPerBuf)
			}
		})
	}
}

// TestRunLanes: every streaming plan gives the same target, manifest and
// counts whatever the number of blocks hashed per batch, including a batch
// holding the short last block and batches cut by journal-done blocks.
func TestRunLanes(t *testing.T) {
	short := newData[:len(newData)-testBS/2] // 63.5 blocks
	for _, plan := range []PlanKind{PlanHashBase, PlanLiveTarget, PlanFull} {
		for _, lanes := range []int{1, 2, 3, 16} {
			t.Run(fmt.Sprintf("%s/lanes=%d", plan, lanes), func(t *testing.T) {
				var want Stats
				for _, data := range [][]byte{newData, short} {
					old := oldData[:len(data)]
					mem := prefilled(t, old)
					var dst blockdiff.Sink = mem
					// VerifyAll re-hashes the target through the batched scan;
					// a full copy needs a sink that cannot be read back.
					opts := Options{Concurrency: 2, lanes: lanes, Verify: VerifyAll}
					switch plan {
					case PlanHashBase:
						opts.Base = manifestOf(t, old)
					case PlanFull:
						dst, opts.Verify = writeOnly{mem}, VerifyNone
					}
					cs := newCounting(memSource(t, data))
					res, err := Run(context.Background(), cs, dst, opts)
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
					if res.Plan != plan {
						t.Errorf("plan: got %s, want %s", res.Plan, plan)
					}
					if !bytes.Equal(mem.Bytes(), data) {
						t.Errorf("target differs from the source")
					}
					if !res.Manifest.Equal(manifestOf(t, data)) {
						t.Errorf("result manifest does not describe the source")
					}
					if got, want := cs.reads.Load(), res.Manifest.Geometry().Blocks(); got != want {
						t.Errorf("source reads: got %d, want %d (each block once)", got, want)
					}
					if opts.Verify == VerifyAll && res.Stats.Verified != res.Manifest.Geometry().Blocks() {
						t.Errorf("verified: got %d, want %d", res.Stats.Verified, res.Manifest.Geometry().Blocks())
					}
					if len(data) == len(newData) {
						want = res.Stats
					}
				}
				// Compare with the counts of one block at a time.
				ref := Options{Concurrency: 1, lanes: 1}
				mem := prefilled(t, oldData)
				var dst blockdiff.Sink = mem
				switch plan {
				case PlanHashBase:
					ref.Base = manifestOf(t, oldData)
				case PlanFull:
					dst = writeOnly{mem}
				}
				res, err := Run(context.Background(), memSource(t, newData), dst, ref)
				if err != nil {
					t.Fatal(err)
				}
				g, w := res.Stats, want
				if g.Written != w.Written || g.Zeroed != w.Zeroed || g.SkippedUnchanged != w.SkippedUnchanged || g.SkippedZero != w.SkippedZero || g.Read != w.Read {
					t.Errorf("stats with lanes=%d: got %+v, want those of lanes=1: %+v", lanes, w, g)
				}
			})
		}
	}
}

// TestJournalResumeLanes: a run that fails mid-batch resumes with batches
// cut around the done blocks, and sends no done block again.
func TestJournalResumeLanes(t *testing.T) {
	for _, lanes := range []int{2, 3, 16} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			jpath := filepath.Join(t.TempDir(), "run.journal")
			mem := prefilled(t, make([]byte, len(newData)))
			zeroBase := manifestOf(t, make([]byte, len(newData)))
			src := fpSource{memSource(t, newData), "v1"}
			opts := Options{Journal: jpath, Base: zeroBase, Concurrency: 2, lanes: lanes, SourceID: "mem:src", TargetID: "mem:dst"}
			full := &failSink{Sink: mem, ok: 21, err: syscall.ENOSPC}
			if _, err := Run(context.Background(), src, full, opts); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("first run: got %v, want ENOSPC", err)
			}
			before := mem.Writes()
			res, err := Run(context.Background(), src, mem, opts)
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			// With two workers the collector may stop before it records
			// every block written before the failure; those are redone. A
			// block the journal claims but that was never written would
			// stay zero in the target, which the byte comparison catches.
			if res.Stats.Resumed == 0 {
				t.Errorf("resumed: got 0 blocks, want those done before the failure")
			}
			if res.Stats.Written+res.Stats.Resumed > nBlocks {
				t.Errorf("written %d + resumed %d exceed %d blocks: resume re-sent done blocks", res.Stats.Written, res.Stats.Resumed, nBlocks)
			}
			if got, want := mem.Writes()-before, res.Stats.Written; got != want {
				t.Errorf("sink writes: got %d, stats say %d", got, want)
			}
			if tot := statsTotal(res.Stats); tot != nBlocks {
				t.Errorf("blocks accounted: got %d, want %d", tot, nBlocks)
			}
			if !bytes.Equal(mem.Bytes(), newData) {
				t.Errorf("target differs from the source after resume")
			}
		})
	}
}

// askSink is a refSink that records the HasDigests calls.
type askSink struct {
	refSink
	calls, asked atomic.Int64
	most         atomic.Int64
}

func (a *askSink) HasDigests(ctx context.Context, ds []blockdiff.Digest, has []bool) error {
	a.calls.Add(1)
	a.asked.Add(int64(len(ds)))
	for {
		m := a.most.Load()
		if int64(len(ds)) <= m || a.most.CompareAndSwap(m, int64(len(ds))) {
			break
		}
	}
	return a.refSink.HasDigests(ctx, ds, has)
}

// TestStreamingReferences: in the streaming plans a store sink is asked
// about each task's changed digests in one call, and content it holds is
// recorded by reference, not sent.
func TestStreamingReferences(t *testing.T) {
	b6 := newData[6*testBS : 7*testBS]
	b1 := newData[1*testBS : 2*testBS]
	for _, tc := range []struct {
		name                 string
		base                 bool
		lanes                int
		written, refs, asked int64
	}{
		{"hash-base lanes=1", true, 1, 5, 1, 6},
		{"hash-base lanes=4", true, 4, 5, 1, 6},
		{"full lanes=4", false, 4, 58, 2, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := prefilled(t, oldData)
			known := map[blockdiff.Digest][]byte{sum256(b6): b6}
			if !tc.base {
				known[sum256(b1)] = b1
			}
			dst := &askSink{refSink: refSink{writeOnly{mem}, mem, known}}
			opts := Options{Concurrency: 2, lanes: tc.lanes, Zero: ZeroAlways}
			if tc.base {
				opts.Base = manifestOf(t, oldData)
			}
			res, err := Run(context.Background(), memSource(t, newData), dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Stats
			if s.Written != tc.written || s.Referenced != tc.refs {
				t.Errorf("written %d, referenced %d; want %d, %d", s.Written, s.Referenced, tc.written, tc.refs)
			}
			if got := dst.asked.Load(); got != tc.asked {
				t.Errorf("digests asked: got %d, want %d (each changed data block once)", got, tc.asked)
			}
			if tc.lanes > 1 && dst.most.Load() < 2 {
				t.Errorf("largest HasDigests call: got %d digests, want batches of up to %d", dst.most.Load(), tc.lanes)
			}
			if got, want := s.BytesWritten, tc.written*testBS; got != want {
				t.Errorf("bytes written: got %d, want %d (referenced and zeroed blocks are not counted)", got, want)
			}
			if !bytes.Equal(mem.Bytes(), newData) {
				t.Errorf("target differs from the source")
			}
			if tot := statsTotal(s); tot != nBlocks {
				t.Errorf("blocks accounted: got %d, want %d", tot, nBlocks)
			}
		})
	}
}
