package sink

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

func TestMemorySink(t *testing.T) {
	ctx := context.Background()
	const bs = 4096
	g := blockdiff.Geometry{Size: 3*bs + 10, BlockSize: bs}
	m, err := NewMemory(g)
	if err != nil {
		t.Fatal(err)
	}
	blk := bytes.Repeat([]byte{7}, bs)
	if err := m.WriteBlock(ctx, 1, blk, blockdiff.Digest{}); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteBlock(ctx, 3, blk[:10], blockdiff.Digest{}); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteBlock(ctx, 3, blk, blockdiff.Digest{}); !errors.Is(err, blockdiff.ErrGeometry) {
		t.Fatalf("long last block: got %v, want ErrGeometry", err)
	}
	if err := m.WriteBlock(ctx, 4, blk, blockdiff.Digest{}); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Fatalf("past end: got %v, want ErrOutOfRange", err)
	}
	if err := m.CopyBlock(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.CopyBlock(ctx, 3, 1); !errors.Is(err, blockdiff.ErrGeometry) {
		t.Fatalf("copy into short block: got %v, want ErrGeometry", err)
	}
	if err := m.ZeroBlocks(ctx, blockdiff.Extent{First: 1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, g.Size)
	copy(want, blk)
	copy(want[3*bs:], blk[:10])
	if !bytes.Equal(m.Bytes(), want) {
		t.Fatal("bytes differ after write, copy and zero")
	}
	if got := m.Writes(); got != 2 {
		t.Fatalf("writes: got %d, want 2", got)
	}
	man, _ := blockdiff.NewManifest(g)
	if err := m.Commit(ctx, man); err != nil {
		t.Fatal(err)
	}
	if !m.Committed() || m.Manifest() != man {
		t.Fatalf("after commit: committed %v manifest %p, want true %p", m.Committed(), m.Manifest(), man)
	}
	if err := m.WriteBlock(ctx, 0, blk, blockdiff.Digest{}); !errors.Is(err, blockdiff.ErrClosed) {
		t.Fatalf("write after commit: got %v, want ErrClosed", err)
	}
	buf := make([]byte, bs)
	if n, err := m.ReadBlock(ctx, 0, buf); err != nil || n != bs || !bytes.Equal(buf, blk) {
		t.Fatalf("read back after commit: n %d err %v", n, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
