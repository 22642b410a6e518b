package cas_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/castest"
	"github.com/blockferry/blockferry/hashing"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/source"
)

const testBS = 4 << 10

// TestFullCopySkipsZeros: a full copy into a snapshot sink leaves the
// volume's zero blocks out (the sink reports UnwrittenZero), and the
// snapshot still restores them as zeros.
func TestFullCopySkipsZeros(t *testing.T) {
	ctx := context.Background()
	data := castest.Volume(7, 32*testBS+500, testBS)
	zero := []int64{0, 3, 4, 17, 32} // 32 is the short last block
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: testBS}
	for _, i := range zero {
		clear(data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))])
	}
	st, err := cas.Open(ctx, cas.NewMemory(), cas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := source.NewMemory(data, testBS)
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.NewSnapshotSink(ctx, "v1", g, cas.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if !k.UnwrittenZero() {
		t.Fatal("UnwrittenZero: got false, want true")
	}
	res, err := replicate.Run(ctx, src, k, replicate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Stats
	if res.Plan != replicate.PlanFull {
		t.Errorf("plan: got %s, want %s", res.Plan, replicate.PlanFull)
	}
	// Count the zero blocks and data bytes (Volume makes zero blocks too).
	var nz, dataBytes int64
	for i := range g.Blocks() {
		if b := data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]; hashing.IsZero(b) {
			nz++
		} else {
			dataBytes += int64(len(b))
		}
	}
	if nz < int64(len(zero)) {
		t.Fatalf("volume has %d zero blocks, want at least %d", nz, len(zero))
	}
	if s.SkippedZero != nz || s.Zeroed != 0 || s.Written != g.Blocks()-nz {
		t.Errorf("skipped zero %d, zeroed %d, written %d; want %d, 0, %d", s.SkippedZero, s.Zeroed, s.Written, nz, g.Blocks()-nz)
	}
	if s.BytesWritten != dataBytes {
		t.Errorf("bytes written: got %d, want %d (data blocks only)", s.BytesWritten, dataBytes)
	}
	if ks := k.Stats(); ks.ZeroBlocks != nz || ks.DataBlocks != g.Blocks()-nz || ks.LogicalBytes != dataBytes {
		t.Errorf("sink stats after commit: got %d zero, %d data blocks, %d bytes; want %d, %d, %d (the snapshot's)",
			ks.ZeroBlocks, ks.DataBlocks, ks.LogicalBytes, nz, g.Blocks()-nz, dataBytes)
	}
	got, err := castest.Restore(ctx, st, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("restored snapshot differs from the volume")
	}
	info, err := st.Show(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if info.DataBlocks != g.Blocks()-nz || info.ZeroBlocks+info.HoleBlocks != nz {
		t.Errorf("snapshot counts: got %d data, %d zero, %d hole; want %d data, %d zero or hole", info.DataBlocks, info.ZeroBlocks, info.HoleBlocks, g.Blocks()-nz, nz)
	}
}
