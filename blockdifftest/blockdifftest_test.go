package blockdifftest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

func openMemory(t *testing.T, content []byte, holes []blockdiff.Extent, bs int) blockdiff.Source {
	t.Helper()
	s, err := source.NewSparseMemory(content, bs, holes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openMemorySink(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
	t.Helper()
	s, err := sink.NewMemory(g)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The wrappers with no faults configured must themselves conform.
func TestFaultySourceConforms(t *testing.T) {
	blockdifftest.TestSource(t, func(t *testing.T, c []byte, h []blockdiff.Extent, bs int) blockdiff.Source {
		return blockdifftest.NewFaultySource(openMemory(t, c, h, bs))
	})
	// Without an Extenter underneath, the one-run fallback must conform too.
	blockdifftest.TestSource(t, func(t *testing.T, c []byte, _ []blockdiff.Extent, bs int) blockdiff.Source {
		m, err := source.NewMemory(c, bs)
		if err != nil {
			t.Fatal(err)
		}
		return blockdifftest.NewFaultySource(m)
	})
}

func TestFaultySinkConforms(t *testing.T) {
	blockdifftest.TestSink(t, func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
		return blockdifftest.NewFaultySink(openMemorySink(t, g))
	})
}

func TestFaultySource(t *testing.T) {
	ctx := context.Background()
	const bs = 4096
	vol := blockdifftest.Volume(1, blockdiff.Geometry{Size: 8 * bs, BlockSize: bs}, 0, 0)
	mem, err := source.NewMemory(vol, bs)
	if err != nil {
		t.Fatal(err)
	}
	f := blockdifftest.NewFaultySource(mem).FailCall(2, syscall.EIO).ShortCall(3).CorruptCall(4).FailIndex(7, syscall.EIO).FailFrom(6, io.ErrUnexpectedEOF)
	buf := make([]byte, bs)
	for _, tc := range []struct {
		call    int64
		index   int64
		wantN   int
		wantErr error
		corrupt bool
	}{
		{1, 0, bs, nil, false},
		{2, 1, 0, syscall.EIO, false},
		{3, 1, bs - 1, nil, false},
		{4, 2, bs, nil, true},
		{5, 7, 0, syscall.EIO, false},
		{6, 3, 0, io.ErrUnexpectedEOF, false},
		{7, 7, 0, syscall.EIO, false}, // the index rule comes first
	} {
		n, err := f.ReadBlock(ctx, tc.index, buf)
		if tc.wantErr != nil {
			var be *blockdiff.BlockError
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, blockdifftest.ErrInjected) || !errors.As(err, &be) || be.Index != tc.index {
				t.Errorf("call %d: got %v, want injected %v at block %d", tc.call, err, tc.wantErr, tc.index)
			}
			continue
		}
		if err != nil || n != tc.wantN {
			t.Errorf("call %d: got n=%d err=%v, want n=%d", tc.call, n, err, tc.wantN)
			continue
		}
		want := vol[tc.index*bs : tc.index*bs+int64(n)]
		if got := !bytes.Equal(buf[:n], want); got != tc.corrupt {
			t.Errorf("call %d: corrupted %v, want %v", tc.call, got, tc.corrupt)
		}
	}
	if got := f.Calls(); got != 7 {
		t.Errorf("Calls: got %d, want 7", got)
	}
	if f.Unwrap() != blockdiff.Source(mem) {
		t.Error("Unwrap does not return the wrapped source")
	}

	slow := blockdifftest.NewFaultySource(mem).SetDelay(time.Hour)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := slow.ReadBlock(cctx, 0, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow read with deadline: got %v, want DeadlineExceeded", err)
	}
}

func TestFaultySink(t *testing.T) {
	ctx := context.Background()
	const bs = 4096
	g := blockdiff.Geometry{Size: 4 * bs, BlockSize: bs}
	mem, err := sink.NewMemory(g)
	if err != nil {
		t.Fatal(err)
	}
	f := blockdifftest.NewFaultySink(mem).FailCall(1, syscall.ENOSPC).ShortCall(2).FailCommit(syscall.EIO)
	data := bytes.Repeat([]byte{9}, bs)
	if err := f.WriteBlock(ctx, 0, data, blockdiff.Digest{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("call 1: got %v, want ENOSPC", err)
	}
	if err := f.WriteBlock(ctx, 1, data, blockdiff.Digest{}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("call 2: got %v, want ErrShortWrite", err)
	}
	if err := f.WriteBlock(ctx, 2, data, blockdiff.Digest{}); err != nil {
		t.Fatalf("call 3: %v", err)
	}
	got := mem.Bytes()
	want := make([]byte, g.Size)
	copy(want[bs:], data[:bs/2])
	copy(want[2*bs:], data)
	if !bytes.Equal(got, want) {
		t.Fatal("sink content: want block 0 untouched, block 1 torn in half, block 2 written")
	}
	if err := f.Commit(ctx, nil); !errors.Is(err, syscall.EIO) || mem.Committed() {
		t.Fatalf("commit: got %v (committed %v), want injected EIO and not committed", err, mem.Committed())
	}
}

func TestVolumeDeterministic(t *testing.T) {
	g := blockdiff.Geometry{Size: 300*4096 + 1000, BlockSize: 4096}
	a := blockdifftest.Volume(42, g, 0.3, 0.2)
	b := blockdifftest.Volume(42, g, 0.3, 0.2)
	c := blockdifftest.Volume(43, g, 0.3, 0.2)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different volumes")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same volume")
	}
	zero, dup := 0, 0
	seen := map[string]bool{}
	for i := range g.Blocks() {
		blk := string(a[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))])
		switch {
		case strings.Count(blk, "\x00") == len(blk):
			zero++
		case seen[blk]:
			dup++
		}
		seen[blk] = true
	}
	// 301 blocks: expect about 90 zero and 60 duplicates.
	if zero < 60 || zero > 120 {
		t.Errorf("zero blocks: got %d of %d, want about 30%%", zero, g.Blocks())
	}
	if dup < 30 || dup > 90 {
		t.Errorf("duplicate blocks: got %d of %d, want about 20%%", dup, g.Blocks())
	}

	// The streaming writer gives the same bytes and leaves zero blocks as holes.
	p := filepath.Join(t.TempDir(), "v.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(g.Size); err != nil {
		t.Fatal(err)
	}
	if err := blockdifftest.WriteVolume(f, 42, g, 0.3, 0.2); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, a) {
		t.Fatal("WriteVolume differs from Volume")
	}
	if alloc, max := allocated(t, p), (g.Blocks()-int64(zero)+1)*4096; alloc > max {
		t.Errorf("WriteVolume allocated %d bytes, want at most %d (zero blocks left as holes)", alloc, max)
	}
}

func TestMutate(t *testing.T) {
	g := blockdiff.Geometry{Size: 400 * 4096, BlockSize: 4096}
	v1 := blockdifftest.Volume(1, g, 0.1, 0)
	orig := bytes.Clone(v1)
	v2 := blockdifftest.Mutate(v1, 9, g.BlockSize, 0.25)
	if !bytes.Equal(v1, orig) {
		t.Fatal("Mutate changed its input")
	}
	if !bytes.Equal(v2, blockdifftest.Mutate(v1, 9, g.BlockSize, 0.25)) {
		t.Fatal("Mutate is not deterministic")
	}
	changed := 0
	for i := range g.Blocks() {
		o := g.Offset(i)
		if !bytes.Equal(v1[o:o+4096], v2[o:o+4096]) {
			changed++
		}
	}
	if changed < 70 || changed > 130 {
		t.Errorf("changed blocks: got %d of 400, want about 100", changed)
	}
	// MutateAt on a copy gives the same v2 and counts the same changes
	// (a rewrite may by chance equal the old block only for zero blocks).
	v3 := bytes.Clone(v1)
	n, err := blockdifftest.MutateAt(writerAt(v3), 9, g, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v3, v2) || n < int64(changed) {
		t.Fatalf("MutateAt: equal %v, changed %d, want equal and >= %d", bytes.Equal(v3, v2), n, changed)
	}
}

type writerAt []byte

func (w writerAt) WriteAt(p []byte, off int64) (int, error) { return copy(w[off:], p), nil }

// brokenSource forgets the short last block and reads zeros for block 3.
type brokenSource struct{ blockdiff.Source }

func (b brokenSource) ReadBlock(ctx context.Context, i int64, buf []byte) (int, error) {
	n, err := b.Source.ReadBlock(ctx, i, buf)
	if i == 3 {
		clear(buf[:n])
	}
	return n, err
}

// brokenSink drops every third block.
type brokenSink struct{ *sink.Memory }

func (b brokenSink) WriteBlock(ctx context.Context, i int64, data []byte, d blockdiff.Digest) error {
	if i%3 == 0 {
		return nil
	}
	return b.Memory.WriteBlock(ctx, i, data, d)
}

// TestSuitesCatchBrokenAdapters runs the suites on broken adapters in a
// child process and expects them to fail: the suites must be able to fail.
func TestSuitesCatchBrokenAdapters(t *testing.T) {
	switch os.Getenv("BLOCKDIFFTEST_BROKEN") {
	case "source":
		blockdifftest.TestSource(t, func(t *testing.T, c []byte, h []blockdiff.Extent, bs int) blockdiff.Source {
			return brokenSource{openMemory(t, c, h, bs)}
		})
		return
	case "sink":
		blockdifftest.TestSink(t, func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
			m, _ := sink.NewMemory(g)
			return brokenSink{m}
		})
		return
	}
	for _, which := range []string{"source", "sink"} {
		t.Run(which, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSuitesCatchBrokenAdapters$")
			cmd.Env = append(os.Environ(), "BLOCKDIFFTEST_BROKEN="+which)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite passed a broken %s:\n%s", which, out)
			}
			if !bytes.Contains(out, []byte("differ")) {
				t.Fatalf("suite failed a broken %s, but not on its bytes:\n%s", which, out)
			}
		})
	}
}

func TestMemoryConforms(t *testing.T) {
	blockdifftest.TestSource(t, openMemory)
	blockdifftest.TestSink(t, openMemorySink)
}
