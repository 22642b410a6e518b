package replicate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

// fpSource is a source with a fingerprint.
type fpSource struct {
	blockdiff.Source
	fp string
}

func (s fpSource) Fingerprint(context.Context) (string, error) { return s.fp, nil }

// TestJournalResume: a run that fails mid-way (disk full) keeps its
// journal; a journal for another plan is refused and left alone; the run
// with the same arguments resumes, sends only what was not done, and
// removes the journal.
func TestJournalResume(t *testing.T) {
	jpath := filepath.Join(t.TempDir(), "run.journal")
	base := manifestOf(t, oldData)
	mem := prefilled(t, make([]byte, len(newData))) // target: fresh zeros, base says so too
	zeroBase := manifestOf(t, make([]byte, len(newData)))
	_ = base
	src := fpSource{memSource(t, newData), "v1"}
	opts := Options{Journal: jpath, Base: zeroBase, Concurrency: 1, SourceID: "mem:src", TargetID: "mem:dst"}

	// 1. Disk full after 20 writes.
	full := &failSink{Sink: mem, ok: 20, err: syscall.ENOSPC}
	if _, err := Run(context.Background(), src, full, opts); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("first run: got %v, want ENOSPC", err)
	}
	st, err := os.Stat(jpath)
	if err != nil {
		t.Fatalf("journal after a failed run: %v", err)
	}
	// A torn tail, as a kill during an append leaves it.
	f, err := os.OpenFile(jpath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3, 4, 5, 6, 7})
	f.Close()

	// 2. Other plans are refused, the journal untouched.
	for _, tc := range []struct {
		name string
		src  blockdiff.Source
		opts func(Options) Options
		what string
	}{
		{"other source", src, func(o Options) Options { o.SourceID = "mem:other"; return o }, "source"},
		{"other target", src, func(o Options) Options { o.TargetID = "mem:other"; return o }, "target"},
		{"changed source", fpSource{src.Source, "v2"}, func(o Options) Options { return o }, "source fingerprint"},
		{"other base", src, func(o Options) Options { o.Base = base; return o }, "base manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.src, mem, tc.opts(opts))
			if !errors.Is(err, ErrJournalMismatch) {
				t.Fatalf("got %v, want ErrJournalMismatch", err)
			}
			if msg := err.Error(); !strings.Contains(msg, jpath) || !strings.Contains(msg, tc.what+": journal") {
				t.Errorf("error %q does not name the journal and %q", msg, tc.what)
			}
			if st2, err := os.Stat(jpath); err != nil || st2.Size() != st.Size()+7 {
				t.Errorf("journal changed by a refused run: %v", err)
			}
		})
	}

	// 3. Resume.
	before := mem.Writes()
	res, err := Run(context.Background(), src, mem, opts)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if res.Stats.Resumed < 20 {
		t.Errorf("resumed: got %d blocks, want at least the 20 written before the failure", res.Stats.Resumed)
	}
	if got, want := mem.Writes()-before, res.Stats.Written; got != want {
		t.Errorf("sink writes: got %d, stats say %d", got, want)
	}
	if tot := statsTotal(res.Stats); tot != nBlocks {
		t.Errorf("blocks accounted: got %d, want %d", tot, nBlocks)
	}
	if res.Stats.Written+res.Stats.Resumed > nBlocks {
		t.Errorf("written %d + resumed %d exceed %d blocks: resume re-sent done blocks", res.Stats.Written, res.Stats.Resumed, nBlocks)
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

// TestJournalNotOurs: a file that is not a journal is refused, a torn
// header is replaced.
func TestJournalNotOurs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content string
		wantErr error
	}{
		{"foreign file", "hello, world\n", blockdiff.ErrCorrupt},
		{"torn magic", journalMagic[:5], nil},
		{"torn header", journalMagic + `{"format":1,"pl`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Run(context.Background(), memSource(t, newData), prefilled(t, oldData), Options{Journal: p})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestJournalRecordRoundTrip(t *testing.T) {
	r := result{index: 77, count: 3, kind: blockdiff.Zero, act: actZeroed, digest: sum256([]byte("x"))}
	b := encodeRecord(nil, &r)
	if len(b) != recSize {
		t.Fatalf("record size: got %d, want %d", len(b), recSize)
	}
	got, ok := decodeRecord((*[recSize]byte)(b), 100)
	if !ok || got != (journalRecord{77, 3, blockdiff.Zero, actZeroed, r.digest}) {
		t.Errorf("round trip: got %+v %v", got, ok)
	}
	if _, ok := decodeRecord((*[recSize]byte)(b), 79); ok {
		t.Errorf("record past the volume end accepted")
	}
	b[20] ^= 1
	if _, ok := decodeRecord((*[recSize]byte)(b), 100); ok {
		t.Errorf("corrupt record accepted")
	}
}
