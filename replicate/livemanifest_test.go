package replicate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/castest"
	"github.com/blockferry/blockferry/sink"
)

// casStore returns a memory store, behind a call-counting backend, holding
// snapshots "v1" (oldData) and "v2" (newData).
func casStore(t *testing.T) (*cas.Store, *castest.Faulty) {
	t.Helper()
	ctx := context.Background()
	fb := castest.NewFaulty(cas.NewMemory())
	st, err := cas.Open(ctx, fb, cas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, v := range []struct {
		name string
		data []byte
	}{{"v1", oldData}, {"v2", newData}} {
		if _, err := castest.Backup(ctx, st, v.name, v.data, testBS); err != nil {
			t.Fatalf("backup %s: %v", v.name, err)
		}
	}
	return st, fb
}

// TestLiveManifestFromStore: restoring store snapshot v2 onto a target that
// holds v1, without a base manifest, hashes the target and fetches only the
// changed contents from the store, each once (new blocks 5, 6 and 20;
// blocks 30 and 31 repeat block 5, block 50 is copied from the target's
// block 2, block 40 is zeroed).
func TestLiveManifestFromStore(t *testing.T) {
	ctx := context.Background()
	st, fb := casStore(t)
	snap, err := st.OpenSnapshot(ctx, "v2")
	if err != nil {
		t.Fatal(err)
	}
	mem := prefilled(t, oldData)
	writes0 := mem.Writes()
	fb.Reset()
	res, err := Run(ctx, snap, mem, Options{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Stats
	if res.Plan != PlanLiveManifest {
		t.Errorf("plan: got %s, want %s", res.Plan, PlanLiveManifest)
	}
	if got, want := fb.Calls(castest.OpGet), 3; got != want {
		t.Errorf("store Gets: got %d, want %d (one per distinct changed content)", got, want)
	}
	if got, want := mem.Writes()-writes0, int64(5); got != want {
		t.Errorf("sink writes: got %d, want %d", got, want)
	}
	got := [6]int64{s.Written, s.Deduplicated, s.CopiedLocal, s.Zeroed, s.SkippedUnchanged, s.Read}
	if want := [6]int64{3, 2, 1, 1, 57, 3}; got != want {
		t.Errorf("written, dedup, copied, zeroed, unchanged, read: got %v, want %v", got, want)
	}
	if got, want := s.BytesWritten, int64(5*testBS); got != want {
		t.Errorf("bytes written: got %d, want %d", got, want)
	}
	if !bytes.Equal(mem.Bytes(), newData) {
		t.Errorf("target differs from v2")
	}
	if !res.Manifest.Equal(manifestOf(t, newData)) {
		t.Errorf("result manifest does not describe v2")
	}
}

// failLive is a readable memory target (Copier, Zeroer) whose WriteBlock
// fails after ok calls.
type failLive struct {
	*sink.Memory
	ok    int64
	calls atomic.Int64
}

func (f *failLive) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	if f.calls.Add(1) > f.ok {
		return syscall.ENOSPC
	}
	return f.Memory.WriteBlock(ctx, i, b, d)
}

// TestLiveManifestResume: an interrupted live-manifest run keeps its
// journal; a run of another plan kind on the same volumes is refused; the
// same run resumes without re-sending what was done.
func TestLiveManifestResume(t *testing.T) {
	jpath := filepath.Join(t.TempDir(), "run.journal")
	// Every block of the target differs, so that there is plenty to write.
	fresh := volume(9, nBlocks, nil)
	src := manifestSource{memSource(t, newData), manifestOf(t, newData)}
	mem := prefilled(t, fresh)
	opts := Options{Journal: jpath, Concurrency: 1, SourceID: "mem:src", TargetID: "mem:dst"}

	if _, err := Run(context.Background(), src, &failLive{Memory: mem, ok: 20}, opts); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("first run: got %v, want ENOSPC", err)
	}
	if _, err := os.Stat(jpath); err != nil {
		t.Fatalf("journal after a failed run: %v", err)
	}
	// Without the manifest the plan would be live-target: not this journal's.
	if _, err := Run(context.Background(), src.Source, mem, opts); !errors.Is(err, ErrJournalMismatch) {
		t.Fatalf("live-target run on a live-manifest journal: got %v, want ErrJournalMismatch", err)
	}
	cs := newCounting(memSource(t, newData))
	before := mem.Writes()
	res, err := Run(context.Background(), manifestSource{cs, src.m}, mem, opts)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	s := res.Stats
	if res.Plan != PlanLiveManifest {
		t.Errorf("plan: got %s, want %s", res.Plan, PlanLiveManifest)
	}
	if s.Resumed < 20 {
		t.Errorf("resumed: got %d blocks, want at least the 20 written before the failure", s.Resumed)
	}
	if got, want := mem.Writes()-before, s.Written+s.Deduplicated; got != want {
		t.Errorf("sink writes: got %d, stats say %d", got, want)
	}
	if tot := statsTotal(s); tot != nBlocks {
		t.Errorf("blocks accounted: got %d, want %d (%+v)", tot, nBlocks, s)
	}
	if got := cs.reads.Load(); got != s.Read || got > nBlocks-s.Resumed {
		t.Errorf("source reads: got %d, stats say %d, at most %d blocks were left", got, s.Read, nBlocks-s.Resumed)
	}
	if !bytes.Equal(mem.Bytes(), newData) {
		t.Errorf("target differs from the source after resume")
	}
	if !res.Manifest.Equal(manifestOf(t, newData)) {
		t.Errorf("manifest after resume does not describe the source")
	}
	if _, err := os.Stat(jpath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal after success: got %v, want it removed", err)
	}
}
