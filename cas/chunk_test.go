package cas

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

func randomBlock(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

func TestChunkEncoding(t *testing.T) {
	text := bytes.Repeat([]byte("the same line again and again\n"), 4096)[:64<<10]
	random := randomBlock(64 << 10)
	for _, tc := range []struct {
		name     string
		level    int
		block    []byte
		wantHdr  byte
		smallish bool
	}{
		{"text default level", 0, text, chunkZstd, true},
		{"text level 1", 1, text, chunkZstd, true},
		{"text level 19", 19, text, chunkZstd, true},
		{"text no compression", -1, text, chunkRaw, false},
		{"random stays raw", 0, random, chunkRaw, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newCodec(tc.level)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			enc := c.encode(nil, tc.block)
			if enc[0] != tc.wantHdr {
				t.Errorf("header byte: got %d, want %d", enc[0], tc.wantHdr)
			}
			if tc.smallish && len(enc) > len(tc.block)/10 {
				t.Errorf("encoded size: got %d of %d, want under a tenth", len(enc), len(tc.block))
			}
			if !tc.smallish && len(enc) != len(tc.block)+1 {
				t.Errorf("raw encoded size: got %d, want %d", len(enc), len(tc.block)+1)
			}
			d := blockdiff.Digest(hashing.Sum256(tc.block))
			got, err := c.decode(d, enc, make([]byte, 0, len(tc.block)))
			if err != nil || !bytes.Equal(got, tc.block) {
				t.Fatalf("decode: %v (equal %v)", err, bytes.Equal(got, tc.block))
			}
		})
	}
}

func TestChunkDecodeRejects(t *testing.T) {
	c, err := newCodec(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	text := bytes.Repeat([]byte("compressible "), 1000)
	other := randomBlock(4096)
	d := blockdiff.Digest(hashing.Sum256(text))
	enc := c.encode(nil, text)
	flipped := bytes.Clone(enc)
	flipped[len(flipped)/2] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", enc[:len(enc)/2]},
		{"header only", enc[:1]},
		{"bit flip", flipped},
		{"unknown encoding", append([]byte{7}, text...)},
		{"swapped (another block's chunk)", c.encode(nil, other)},
		{"raw, wrong content", append([]byte{chunkRaw}, text[1:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.decode(d, tc.b, nil)
			if !errors.Is(err, blockdiff.ErrChecksum) {
				t.Fatalf("got %v, want an error wrapping ErrChecksum", err)
			}
			if !strings.Contains(err.Error(), d.String()) {
				t.Errorf("error %q does not name digest %s", err, d)
			}
		})
	}
}

func TestChunkKey(t *testing.T) {
	d := blockdiff.Digest(hashing.Sum256([]byte("x")))
	k := chunkKey(d)
	h := d.String()
	if want := "chunks/" + h[:2] + "/" + h[2:4] + "/" + h; k != want {
		t.Fatalf("chunkKey: got %q, want %q", k, want)
	}
	if got, ok := parseChunkKey(k); !ok || got != d {
		t.Errorf("parseChunkKey(%q): got %v, %v; want %v, true", k, got, ok, d)
	}
	for _, bad := range []string{"chunks/00/00/" + h, "chunks/" + h, "chunks/ab/cd/xyz"} {
		if _, ok := parseChunkKey(bad); ok {
			t.Errorf("parseChunkKey(%q): got ok, want not a chunk key", bad)
		}
	}
}

func TestZeroBlocksNeverStored(t *testing.T) {
	ctx := context.Background()
	b := NewMemory()
	s, err := Open(ctx, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := blockdiff.Geometry{Size: 3*4096 + 100, BlockSize: 4096}
	k, err := s.NewSnapshotSink(ctx, "zeros", g, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Blocks() {
		z := make([]byte, g.BlockLen(i))
		if err := k.WriteBlock(ctx, i, z, hashing.ZeroDigest(len(z))); err != nil {
			t.Fatal(err)
		}
	}
	has := make([]bool, 2)
	if err := k.HasDigests(ctx, []blockdiff.Digest{hashing.ZeroDigest(4096), hashing.ZeroDigest(100)}, has); err != nil || !has[0] || !has[1] {
		t.Errorf("HasDigests of zero digests: got %v, %v; want both true", has, err)
	}
	if err := k.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	b.List(ctx, "chunks/", func(ObjectInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("chunks stored for an all-zero volume: got %d, want 0", n)
	}
	if st := k.Stats(); st.ZeroBlocks != 4 || st.Uploaded != 0 {
		t.Errorf("stats: got %+v, want 4 zero blocks and nothing uploaded", st)
	}
	sn, err := s.OpenSnapshot(ctx, "zeros")
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{0xff}, 4096)
	if n, err := sn.ReadBlock(ctx, 3, buf); err != nil || n != 100 || !hashing.IsZero(buf[:100]) {
		t.Errorf("ReadBlock of the short zero block: got %d, %v; want 100 zeros", n, err)
	}
	if _, err := sn.ReadBlock(ctx, 4, buf); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Errorf("ReadBlock past the end: got %v, want ErrOutOfRange", err)
	}
}

func TestWriteRefMissing(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, NewMemory(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := blockdiff.Geometry{Size: 8192, BlockSize: 4096}
	k, err := s.NewSnapshotSink(ctx, "refs", g, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d := blockdiff.Digest(hashing.Sum256([]byte("never stored")))
	if err := k.WriteRef(ctx, 0, d); !errors.Is(err, blockdiff.ErrNotFound) {
		t.Errorf("WriteRef of a missing chunk: got %v, want ErrNotFound", err)
	}
	m, _ := blockdiff.NewManifest(g)
	m.Set(1, blockdiff.Data, d)
	if err := k.Commit(ctx, m); !errors.Is(err, blockdiff.ErrNotFound) {
		t.Errorf("Commit of a manifest naming a missing chunk: got %v, want ErrNotFound", err)
	}
	if has, _ := s.b.Has(ctx, "snapshots/refs"); has {
		t.Errorf("a snapshot was written despite the missing chunk")
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	b := NewMemory()
	b.Put(ctx, "config", []byte(`{"format":"something-else"}`))
	if _, err := Open(ctx, b, Options{}); !errors.Is(err, blockdiff.ErrCorrupt) {
		t.Errorf("Open on a foreign config: got %v, want ErrCorrupt", err)
	}
	if _, err := Open(ctx, NewMemory(), Options{CompressionLevel: 23}); err == nil {
		t.Errorf("Open with level 23: got nil error")
	}
	if err := ValidName("../x"); err == nil {
		t.Errorf("ValidName(../x): got nil error")
	}
}

func TestGCRemovesCrashedTempFiles(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "chunks/ab/cd/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(d.Root(), "chunks", "ab", "cd", ".tmp-123")
	if err := os.WriteFile(old, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	gs, err := s.GC(ctx, GCOptions{}) // default grace: a fresh temp file stays
	if err != nil || gs.TempFiles != 0 {
		t.Fatalf("GC with a fresh temp file: got %+v, %v; want it kept", gs, err)
	}
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	gs, err = s.GC(ctx, GCOptions{})
	if err != nil || gs.TempFiles != 1 {
		t.Fatalf("GC with an old temp file: got %+v, %v; want 1 removed", gs, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file still there: %v", err)
	}
}
