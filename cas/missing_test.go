package cas

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// TestMissingBounded: the digests remembered as missing stay within
// missingCap, oldest forgotten first, and each is used once.
func TestMissingBounded(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, NewMemory(), Options{ListChunks: -1})
	if err != nil {
		t.Fatal(err)
	}
	g := blockdiff.Geometry{Size: 4096, BlockSize: 4096}
	k, err := s.NewSnapshotSink(ctx, "m", g, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	const extra = 10
	ds := make([]blockdiff.Digest, missingCap+extra)
	for i := range ds {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		ds[i] = hashing.Sum256(b[:])
	}
	has := make([]bool, len(ds))
	if err := k.HasDigests(ctx, ds, has); err != nil {
		t.Fatal(err)
	}
	if got := len(k.missing); got != missingCap {
		t.Errorf("remembered: got %d digests, want %d", got, missingCap)
	}
	// Which ones were evicted depends on the order the concurrent answers
	// arrived; exactly extra of them are gone.
	gone := 0
	for _, d := range ds {
		if !k.knownMissing(d) {
			gone++
		}
	}
	if gone != extra {
		t.Errorf("forgotten: got %d digests, want %d", gone, extra)
	}
	if k.knownMissing(ds[len(ds)-1]) {
		t.Errorf("knownMissing twice for one digest: got true, want false (each answer is used once)")
	}
	if k.absent {
		t.Errorf("absent with the listing turned off")
	}
}
