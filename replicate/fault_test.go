package replicate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// TestSourceChangedDuringCopy: a file modified while it is copied is
// refused, nothing is committed and the journal is dropped.
func TestSourceChangedDuringCopy(t *testing.T) {
	dir := t.TempDir()
	srcPath, dstPath := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	if err := os.WriteFile(srcPath, newData, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: testBS})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := sink.OpenFile(dstPath, src.Geometry(), sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	journal := filepath.Join(dir, "j")
	touched := false
	_, err = Run(context.Background(), src, dst, Options{
		Journal: journal, ProgressInterval: 1,
		Progress: func(Event) {
			if !touched {
				touched = true
				later := time.Now().Add(time.Hour)
				if err := os.Chtimes(srcPath, later, later); err != nil {
					t.Error(err)
				}
			}
		},
	})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("got %v, want ErrSourceChanged", err)
	}
	if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal of an inconsistent copy kept: %v", err)
	}
}

// changingFP reports a new fingerprint on every call.
type changingFP struct {
	blockdiff.Source
	n atomic.Int64
}

func (c *changingFP) Fingerprint(context.Context) (string, error) {
	return time.Duration(c.n.Add(1)).String(), nil
}

func TestFingerprintChangedDuringCopy(t *testing.T) {
	mem := prefilled(t, oldData)
	_, err := Run(context.Background(), &changingFP{Source: memSource(t, newData)}, mem, Options{})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("got %v, want ErrSourceChanged", err)
	}
	if mem.Committed() {
		t.Errorf("target committed from a changing source")
	}
}

// TestSameFileRefused: the target is the source, by the same path or by a
// hard link.
func TestSameFileRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vol.img")
	if err := os.WriteFile(p, newData, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.img")
	if err := os.Link(p, link); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{p, link} {
		t.Run(filepath.Base(target), func(t *testing.T) {
			src, err := source.OpenFile(p, source.Options{BlockSize: testBS})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dst, err := sink.OpenFile(target, src.Geometry(), sink.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := Run(context.Background(), src, dst, Options{}); !errors.Is(err, ErrSameVolume) {
				t.Fatalf("got %v, want ErrSameVolume", err)
			}
		})
	}
}

// TestFileTargetGrows: a target file smaller than the source is grown by
// the sink and ends identical.
func TestFileTargetGrows(t *testing.T) {
	dir := t.TempDir()
	srcPath, dstPath := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	if err := os.WriteFile(srcPath, newData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dstPath, oldData[:10*testBS], 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: testBS})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := sink.OpenFile(dstPath, src.Geometry(), sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	res, err := Run(context.Background(), src, dst, Options{Verify: VerifyAll})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dstPath)
	if string(got) != string(newData) {
		t.Errorf("target differs from the source")
	}
	if res.Plan != PlanLiveTarget || res.Stats.Verified != nBlocks {
		t.Errorf("got plan %s verified %d, want %s %d", res.Plan, res.Stats.Verified, PlanLiveTarget, nBlocks)
	}
}

// TestBWLimit: with a bandwidth cap the run takes the time the cap
// implies (in synctest's fake time).
func TestBWLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 64 << 10 // bytes per second
		start := time.Now()
		res, err := Run(context.Background(), memSource(t, newData), writeOnly{prefilled(t, make([]byte, len(newData)))}, Options{BWLimit: limit})
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		// The first block goes out of the burst; the rest at the cap,
		// including the zero bytes written for the Zeroed blocks (the
		// sink has no Zeroer), which BytesWritten does not count.
		sent := res.Stats.BytesWritten + res.Stats.Zeroed*testBS
		want := time.Duration(float64(sent-testBS) / limit * float64(time.Second))
		if elapsed < want || elapsed > want+time.Second {
			t.Errorf("%d bytes at %d B/s took %v, want about %v", sent, limit, elapsed, want)
		}
	})
}

// syncSink counts Sync calls.
type syncSink struct {
	*sink.Memory
	syncs atomic.Int64
}

func (s *syncSink) Sync(context.Context) error { s.syncs.Add(1); return nil }

// TestJournalSyncsSink: with a Syncer sink the sink is synced before the
// journal, and a resume still works.
func TestJournalSyncsSink(t *testing.T) {
	s := &syncSink{Memory: prefilled(t, oldData)}
	res, err := Run(context.Background(), memSource(t, newData), s, Options{Journal: filepath.Join(t.TempDir(), "j"), Base: manifestOf(t, oldData)})
	if err != nil {
		t.Fatal(err)
	}
	if s.syncs.Load() == 0 {
		t.Errorf("sink never synced before the journal")
	}
	if res.Stats.Written != 6 {
		t.Errorf("written: got %d, want 6", res.Stats.Written)
	}
}
