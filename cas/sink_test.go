package cas_test

import (
	"bytes"
	"context"
	"strings"
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

// distinctData returns the number of distinct non-zero bs-byte blocks of v.
func distinctData(v []byte, bs int) int64 {
	seen := map[blockdiff.Digest]bool{}
	for off := 0; off < len(v); off += bs {
		if b := v[off:min(off+bs, len(v))]; !hashing.IsZero(b) {
			seen[hashing.Sum256(b)] = true
		}
	}
	return int64(len(seen))
}

func chunkPuts(f *castest.Faulty) (n int64) {
	for _, k := range f.PutKeys() {
		if strings.HasPrefix(k, "chunks/") {
			n++
		}
	}
	return n
}

// TestBackupAsksOnce: without a listing, each new content costs one
// existence request (the HasDigests answer), not a second one in
// WriteBlock before the upload; both through castest.Backup and through
// the replication engine.
func TestBackupAsksOnce(t *testing.T) {
	ctx := context.Background()
	v := castest.Volume(21, 64*testBS, testBS)
	want := distinctData(v, testBS)
	for _, tc := range []string{"castest.Backup", "replicate.Run"} {
		t.Run(tc, func(t *testing.T) {
			f := castest.NewFaulty(cas.NewMemory())
			st, err := cas.Open(ctx, f, cas.Options{ListChunks: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			f.Reset()
			var s cas.Stats
			switch tc {
			case "castest.Backup":
				s, err = castest.Backup(ctx, st, "v", v, testBS)
			default:
				src, _ := source.NewMemory(v, testBS)
				var k *cas.SnapshotSink
				k, err = st.NewSnapshotSink(ctx, "v", src.Geometry(), cas.SnapshotOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer k.Close()
				_, err = replicate.Run(ctx, src, k, replicate.Options{Concurrency: 4})
				s = k.Stats()
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.HasRequests != want || s.Uploaded != want {
				t.Errorf("Has requests %d, uploads %d; want %d and %d (one each per distinct content)", s.HasRequests, s.Uploaded, want, want)
			}
			// Two more: the snapshot name is checked at the start and at Commit.
			if got := int64(f.Calls(castest.OpHas)); got != want+2 {
				t.Errorf("backend Has calls: got %d, want %d", got, want+2)
			}
		})
	}
}

// TestBackupListsSmallStore: the first backup into an empty store sends no
// existence request (one listing says the store is empty); a later backup
// into the small store learns its chunks from the listing; a listing cut
// by its bound falls back to asking.
func TestBackupListsSmallStore(t *testing.T) {
	ctx := context.Background()
	v1 := castest.Volume(31, 64*testBS, testBS)
	v2 := bytes.Clone(v1)
	copy(v2[8*testBS:], castest.Volume(32, 4*testBS, testBS)) // blocks 8..11 change
	f := castest.NewFaulty(cas.NewMemory())
	st, err := cas.Open(ctx, f, cas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f.Reset()
	s1, err := castest.Backup(ctx, st, "v1", v1, testBS)
	if err != nil {
		t.Fatal(err)
	}
	d1 := distinctData(v1, testBS)
	if s1.HasRequests != 0 || s1.Uploaded != d1 || chunkPuts(f) != d1 {
		t.Errorf("backup into an empty store: %d Has requests, %d uploads (%d chunk puts); want 0, %d, %d", s1.HasRequests, s1.Uploaded, chunkPuts(f), d1, d1)
	}
	if got := f.Calls(castest.OpHas); got != 2 {
		t.Errorf("backend Has calls: got %d, want 2 (the snapshot name, at start and Commit)", got)
	}
	f.Reset()
	s2, err := castest.Backup(ctx, st, "v2", v2, testBS)
	if err != nil {
		t.Fatal(err)
	}
	if s2.HasRequests != 0 || s2.Uploaded == 0 || s2.Uploaded > 4 {
		t.Errorf("backup into a small store: %d Has requests, %d uploads; want 0 and 1..4", s2.HasRequests, s2.Uploaded)
	}
	// A bound below the store's chunk count: the listing is cut and the
	// sink asks about what it does not know.
	st3, err := cas.Open(ctx, f, cas.Options{ListChunks: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer st3.Close()
	s3, err := castest.Backup(ctx, st3, "v2b", v2, testBS)
	if err != nil {
		t.Fatal(err)
	}
	if s3.HasRequests == 0 || s3.Uploaded != 0 {
		t.Errorf("backup with a cut listing: %d Has requests, %d uploads; want some and 0", s3.HasRequests, s3.Uploaded)
	}
	for _, name := range []string{"v1", "v2", "v2b"} {
		got, err := castest.Restore(ctx, st, name)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string][]byte{"v1": v1, "v2": v2, "v2b": v2}[name]; !bytes.Equal(got, want) {
			t.Errorf("restore %s: differs from the volume", name)
		}
	}
}

// TestListingConcurrentWriter: a backup that found the store empty at its
// start, while another backup stores the same contents, sends them again
// (harmless), and its Commit still finds chunks it never wrote itself:
// "missing at the start" never turns into "present".
func TestListingConcurrentWriter(t *testing.T) {
	ctx := context.Background()
	v := castest.Volume(41, 32*testBS, testBS)
	g := blockdiff.Geometry{Size: int64(len(v)), BlockSize: testBS}
	st, err := cas.Open(ctx, cas.NewMemory(), cas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.NewSnapshotSink(ctx, "a", g, cas.SnapshotOptions{}) // lists: empty
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := castest.Backup(ctx, st, "b", v, testBS); err != nil { // stores everything
		t.Fatal(err)
	}
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	var first int64 = -1
	for i := range g.Blocks() {
		b := v[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
		k := blockdiff.Data
		if hashing.IsZero(b) {
			k = blockdiff.Zero
		} else if first < 0 {
			first = i
		}
		m.Set(i, k, hashing.Sum256(b))
	}
	b0 := v[g.Offset(first) : g.Offset(first)+testBS]
	has := []bool{true}
	if err := a.HasDigests(ctx, []blockdiff.Digest{hashing.Sum256(b0)}, has); err != nil || has[0] {
		t.Errorf("HasDigests after an empty listing: got %v, %v; want false (missing at the start)", has, err)
	}
	if err := a.WriteBlock(ctx, first, b0, hashing.Sum256(b0)); err != nil {
		t.Fatal(err)
	}
	// Commit names every block, written by "b" only: it must ask.
	if err := a.Commit(ctx, m); err != nil {
		t.Fatalf("Commit naming chunks another backup stored: %v", err)
	}
	got, err := castest.Restore(ctx, st, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v) {
		t.Errorf("restore a: differs from the volume")
	}
}
