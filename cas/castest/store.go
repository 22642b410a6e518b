package castest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/hashing"
)

// Volume returns a deterministic volume of size bytes for seed: random
// (incompressible) blocks, text-like (compressible) blocks and zero blocks
// in a fixed pattern of bs-byte blocks.
func Volume(seed uint64, size int64, bs int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	cc := rand.NewChaCha8(key)
	for off := int64(0); off < size; off += int64(bs) {
		blk := b[off:min(off+int64(bs), size)]
		switch r.IntN(4) {
		case 0: // zero
		case 1: // compressible
			line := fmt.Appendf(nil, "block at %d of volume %d says hello\n", off, seed)
			for i := 0; i < len(blk); i += len(line) {
				copy(blk[i:], line)
			}
		default:
			cc.Read(blk)
		}
	}
	return b
}

// Backup writes data (a whole volume of block size bs) to st as snapshot
// name the way the replication engine drives a sink: it hashes each block,
// asks HasDigests in batches, sends WriteRef for contents the store has and
// WriteBlock for the rest, then commits the manifest. It returns the
// sink's stats.
func Backup(ctx context.Context, st *cas.Store, name string, data []byte, bs int) (cas.Stats, error) {
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: bs}
	k, err := st.NewSnapshotSink(ctx, name, g, cas.SnapshotOptions{Tags: map[string]string{"test": name}})
	if err != nil {
		return cas.Stats{}, err
	}
	defer k.Close()
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		return cas.Stats{}, err
	}
	const batch = 64
	n := g.Blocks()
	for first := int64(0); first < n; first += batch {
		last := min(first+batch, n)
		ds := make([]blockdiff.Digest, last-first)
		for i := first; i < last; i++ {
			blk := data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
			ds[i-first] = hashing.Sum256(blk)
			kind := blockdiff.Data
			if hashing.IsZero(blk) {
				kind = blockdiff.Zero
			}
			m.Set(i, kind, ds[i-first])
		}
		has := make([]bool, len(ds))
		if err := k.HasDigests(ctx, ds, has); err != nil {
			return k.Stats(), err
		}
		for i := first; i < last; i++ {
			if has[i-first] {
				err = k.WriteRef(ctx, i, ds[i-first])
			} else {
				err = k.WriteBlock(ctx, i, data[g.Offset(i):g.Offset(i)+int64(g.BlockLen(i))], ds[i-first])
			}
			if err != nil {
				return k.Stats(), err
			}
		}
	}
	if err := k.Commit(ctx, m); err != nil {
		return k.Stats(), err
	}
	return k.Stats(), nil
}

// Restore reads snapshot name back whole.
func Restore(ctx context.Context, st *cas.Store, name string) ([]byte, error) {
	sn, err := st.OpenSnapshot(ctx, name)
	if err != nil {
		return nil, err
	}
	defer sn.Close()
	g := sn.Geometry()
	out := make([]byte, g.Size)
	buf := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		n, err := sn.ReadBlock(ctx, i, buf)
		if err != nil {
			return nil, err
		}
		copy(out[g.Offset(i):], buf[:n])
	}
	return out, nil
}

func countChunks(t *testing.T, b cas.Backend) int {
	t.Helper()
	n := 0
	if err := b.List(context.Background(), "chunks/", func(cas.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func chunkPuts(f *Faulty) int {
	n := 0
	for _, k := range f.PutKeys() {
		if strings.HasPrefix(k, "chunks/") {
			n++
		}
	}
	return n
}

// TestStore runs the store's backup, restore, dedupe, gc and verify checks
// on fresh backends made by newBackend (each must start empty).
func TestStore(t *testing.T, newBackend func(t *testing.T) cas.Backend) {
	ctx := context.Background()
	const bs = 4 << 10
	const size = 64*bs + 1000 // a short last block
	open := func(t *testing.T, b cas.Backend, opts cas.Options) *cas.Store {
		t.Helper()
		st, err := cas.Open(ctx, b, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	v1 := Volume(1, size, bs)
	v2 := bytes.Clone(v1)
	copy(v2[5*bs:], Volume(2, 3*bs, bs)) // blocks 5..7 change
	copy(v2[40*bs:41*bs], make([]byte, bs))

	t.Run("RoundTrip", func(t *testing.T) {
		f := NewFaulty(newBackend(t))
		st := open(t, f, cas.Options{})
		s1, err := Backup(ctx, st, "v1", v1, bs)
		if err != nil {
			t.Fatalf("backup v1: %v", err)
		}
		if s1.Uploaded == 0 || s1.ZeroBlocks == 0 || s1.DataBlocks+s1.ZeroBlocks != 65 {
			t.Fatalf("backup v1 stats %+v: want uploads, zero blocks, and 65 blocks in all", s1)
		}
		if got := countChunks(t, f); int64(got) != s1.Uploaded {
			t.Errorf("chunks after v1: got %d, want %d (one per distinct data block)", got, s1.Uploaded)
		}
		f.Reset()
		s2, err := Backup(ctx, st, "v2", v2, bs)
		if err != nil {
			t.Fatalf("backup v2: %v", err)
		}
		if s2.Uploaded > 3 || s2.Uploaded == 0 {
			t.Errorf("backup v2 uploaded %d chunks, want 1 to 3 (the changed blocks)", s2.Uploaded)
		}
		if got := chunkPuts(f); int64(got) != s2.Uploaded {
			t.Errorf("backend chunk puts for v2: got %d, want %d", got, s2.Uploaded)
		}
		for name, want := range map[string][]byte{"v1": v1, "v2": v2} {
			got, err := Restore(ctx, st, name)
			if err != nil {
				t.Fatalf("restore %s: %v", name, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("restore %s: bytes differ from the volume backed up", name)
			}
		}
		infos, err := st.List(ctx)
		if err != nil || len(infos) != 2 || infos[0].Name != "v1" || infos[1].Name != "v2" {
			t.Fatalf("List: got %+v, %v; want v1 then v2", infos, err)
		}
		if infos[1].Tags["test"] != "v2" || infos[1].Geometry.Size != size {
			t.Errorf("List v2: got tags %v size %d, want test=v2 and %d", infos[1].Tags, infos[1].Geometry.Size, size)
		}
		if _, err := Backup(ctx, st, "v1", v1, bs); !errors.Is(err, cas.ErrExists) {
			t.Errorf("backup to an existing name: got %v, want ErrExists", err)
		}
		if _, err := st.Show(ctx, "nope"); !errors.Is(err, blockdiff.ErrNotFound) {
			t.Errorf("Show missing: got %v, want ErrNotFound", err)
		}
		rep, err := st.Verify(ctx, true)
		if err != nil || rep.Snapshots != 2 || rep.Read != int64(rep.Chunks) || rep.Chunks == 0 {
			t.Errorf("Verify: got %+v, %v; want 2 snapshots and every chunk read", rep, err)
		}
	})

	t.Run("UnchangedUploadsNothing", func(t *testing.T) {
		f := NewFaulty(newBackend(t))
		cache := t.TempDir()
		st := open(t, f, cas.Options{CacheDir: cache})
		if _, err := Backup(ctx, st, "a", v1, bs); err != nil {
			t.Fatal(err)
		}
		// A new process: same backend, new Store, the cache on disk.
		st2 := open(t, f, cas.Options{CacheDir: cache})
		f.Reset()
		s, err := Backup(ctx, st2, "b", v1, bs)
		if err != nil {
			t.Fatal(err)
		}
		if got := chunkPuts(f); got != 0 || s.Uploaded != 0 {
			t.Errorf("second backup of an unchanged volume: got %d chunk puts (stats %d), want 0", got, s.Uploaded)
		}
		if s.HasRequests != 0 || f.Calls(OpHas) > 3 {
			t.Errorf("second backup with a warm cache: got %d Has requests (%d backend Has calls), want 0 per block", s.HasRequests, f.Calls(OpHas))
		}
		if r := s.DedupeRatio(); !math.IsInf(r, 1) {
			t.Errorf("DedupeRatio with nothing stored: got %v, want +Inf", r)
		}
		// Without a cache, a small store: its chunks are listed once at
		// the start, no Has requests, still no chunk puts.
		st3 := open(t, f, cas.Options{})
		f.Reset()
		s, err = Backup(ctx, st3, "c", v1, bs)
		if err != nil {
			t.Fatal(err)
		}
		if got := chunkPuts(f); got != 0 {
			t.Errorf("third backup without cache: got %d chunk puts, want 0", got)
		}
		if s.HasRequests != 0 {
			t.Errorf("third backup without cache: got %d Has requests, want 0 (the chunk listing answers)", s.HasRequests)
		}
		// Without a cache or a listing: batched Has requests, one per
		// distinct content at most, still no chunk puts.
		st4 := open(t, f, cas.Options{ListChunks: -1})
		f.Reset()
		s, err = Backup(ctx, st4, "d", v1, bs)
		if err != nil {
			t.Fatal(err)
		}
		if got := chunkPuts(f); got != 0 {
			t.Errorf("fourth backup without cache or listing: got %d chunk puts, want 0", got)
		}
		if s.HasRequests == 0 || s.HasRequests > s.DataBlocks {
			t.Errorf("fourth backup without cache or listing: got %d Has requests, want 1..%d", s.HasRequests, s.DataBlocks)
		}
	})

	t.Run("DedupeAcrossVolumes", func(t *testing.T) {
		b := newBackend(t)
		st := open(t, b, cas.Options{})
		a := Volume(10, 32*bs, bs)
		c := append(bytes.Clone(a[:16*bs]), Volume(11, 16*bs, bs)...)
		if _, err := Backup(ctx, st, "vol-a", a, bs); err != nil {
			t.Fatal(err)
		}
		before := countChunks(t, b)
		sc, err := Backup(ctx, st, "vol-c", c, bs)
		if err != nil {
			t.Fatal(err)
		}
		distinct := map[blockdiff.Digest]bool{}
		for _, v := range [][]byte{a, c} {
			for off := 0; off < len(v); off += bs {
				if !hashing.IsZero(v[off : off+bs]) {
					distinct[hashing.Sum256(v[off:off+bs])] = true
				}
			}
		}
		if got := countChunks(t, b); got != len(distinct) {
			t.Errorf("chunks for two volumes sharing half: got %d, want %d distinct", got, len(distinct))
		}
		if int64(countChunks(t, b)-before) != sc.Uploaded {
			t.Errorf("second volume: stats say %d uploaded, backend grew by %d", sc.Uploaded, countChunks(t, b)-before)
		}
		if sc.Deduped() == 0 {
			t.Errorf("second volume: Deduped() = 0, want the shared blocks")
		}
	})

	t.Run("GC", func(t *testing.T) {
		b := newBackend(t)
		st := open(t, b, cas.Options{})
		for name, v := range map[string][]byte{"v1": v1, "v2": v2} {
			if _, err := Backup(ctx, st, name, v, bs); err != nil {
				t.Fatal(err)
			}
		}
		total := countChunks(t, b)
		if gs, err := st.GC(ctx, cas.GCOptions{Grace: -1}); err != nil || gs.Deleted != 0 || gs.Referenced != total {
			t.Fatalf("GC with every chunk referenced: got %+v, %v; want nothing deleted, %d referenced", gs, err, total)
		}
		if err := st.Delete(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		if gs, err := st.GC(ctx, cas.GCOptions{}); err != nil || gs.Deleted != 0 || gs.Young == 0 {
			t.Fatalf("GC within the grace period: got %+v, %v; want nothing deleted, young objects kept", gs, err)
		}
		gs, err := st.GC(ctx, cas.GCOptions{Grace: -1})
		if err != nil || gs.Deleted == 0 {
			t.Fatalf("GC after deleting v1: got %+v, %v; want v1-only chunks and manifest deleted", gs, err)
		}
		if got := countChunks(t, b); got != gs.Referenced {
			t.Errorf("chunks after gc: got %d, want %d referenced", got, gs.Referenced)
		}
		got, err := Restore(ctx, st, "v2")
		if err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("restore v2 after gc: %v (equal %v)", err, bytes.Equal(got, v2))
		}
		if rep, err := st.Verify(ctx, true); err != nil || len(rep.Missing)+len(rep.Corrupt) != 0 {
			t.Errorf("Verify after gc: got %+v, %v; want clean", rep, err)
		}
	})

	t.Run("GCRace", func(t *testing.T) {
		b := newBackend(t)
		st := open(t, b, cas.Options{})
		g := blockdiff.Geometry{Size: size, BlockSize: bs}
		k, err := st.NewSnapshotSink(ctx, "pending", g, cas.SnapshotOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		for i := range g.Blocks() {
			blk := v1[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
			if err := k.WriteBlock(ctx, i, blk, hashing.Sum256(blk)); err != nil {
				t.Fatal(err)
			}
		}
		uploaded := countChunks(t, b)
		// The backup has uploaded but not committed: gc must not take its chunks.
		if gs, err := st.GC(ctx, cas.GCOptions{Grace: -1}); !errors.Is(err, cas.ErrBusy) || gs.Deleted != 0 {
			t.Fatalf("GC during a backup: got %+v, %v; want ErrBusy and nothing deleted", gs, err)
		}
		if got := countChunks(t, b); got != uploaded {
			t.Fatalf("chunks after gc during backup: got %d, want %d", got, uploaded)
		}
		if err := k.Commit(ctx, nil); err != nil {
			t.Fatalf("Commit after the refused gc: %v", err)
		}
		if got, err := Restore(ctx, st, "pending"); err != nil || !bytes.Equal(got, v1) {
			t.Fatalf("restore: %v (equal %v)", err, bytes.Equal(got, v1))
		}
		if gs, err := st.GC(ctx, cas.GCOptions{Grace: -1}); err != nil || gs.Deleted != 0 {
			t.Errorf("GC after commit: got %+v, %v; want nothing deleted", gs, err)
		}
		// A gc in progress (its marker) keeps a new backup from starting.
		if err := b.Put(ctx, "locks/gc-test", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if _, err := st.NewSnapshotSink(ctx, "later", g, cas.SnapshotOptions{}); !errors.Is(err, cas.ErrBusy) {
			t.Errorf("NewSnapshotSink while gc runs: got %v, want ErrBusy", err)
		}
		b.Delete(ctx, "locks/gc-test")
	})

	t.Run("StaleBackupThenGC", func(t *testing.T) {
		b := newBackend(t)
		st := open(t, b, cas.Options{StaleAfter: time.Second})
		g := blockdiff.Geometry{Size: 8 * bs, BlockSize: bs}
		k, err := st.NewSnapshotSink(ctx, "slow", g, cas.SnapshotOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		data := Volume(20, 8*bs, bs)
		for i := range g.Blocks() {
			blk := data[g.Offset(i) : g.Offset(i)+bs]
			if err := k.WriteBlock(ctx, i, blk, hashing.Sum256(blk)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2100 * time.Millisecond) // the marker goes stale (object mtimes may have 1 s resolution)
		if gs, err := st.GC(ctx, cas.GCOptions{Grace: -1}); err != nil || gs.Deleted == 0 {
			t.Fatalf("GC with a stale backup marker: got %+v, %v; want its unreferenced chunks deleted", gs, err)
		}
		if err := k.Commit(ctx, nil); !errors.Is(err, cas.ErrBusy) && !errors.Is(err, blockdiff.ErrNotFound) {
			t.Fatalf("Commit after gc took the chunks: got %v, want ErrBusy or ErrNotFound", err)
		}
		if _, err := st.Show(ctx, "slow"); !errors.Is(err, blockdiff.ErrNotFound) {
			t.Errorf("snapshot after failed commit: got %v, want ErrNotFound", err)
		}
	})

	t.Run("Corruption", func(t *testing.T) {
		f := NewFaulty(newBackend(t))
		st := open(t, f, cas.Options{})
		if _, err := Backup(ctx, st, "c", v1, bs); err != nil {
			t.Fatal(err)
		}
		f.CorruptGets(func(k string) bool { return strings.HasPrefix(k, "chunks/") })
		_, err := Restore(ctx, st, "c")
		if !errors.Is(err, blockdiff.ErrChecksum) {
			t.Fatalf("restore with corrupt chunks: got %v, want ErrChecksum", err)
		}
		var be *blockdiff.BlockError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "chunk ") {
			t.Errorf("restore error %q: want a BlockError naming the chunk", err)
		}
		rep, err := st.Verify(ctx, true)
		if !errors.Is(err, blockdiff.ErrChecksum) || len(rep.Corrupt) != rep.Chunks {
			t.Errorf("Verify(readData) with corrupt chunks: got %d corrupt of %d, %v; want all, ErrChecksum", len(rep.Corrupt), rep.Chunks, err)
		}
		if _, err := st.Verify(ctx, false); err != nil {
			t.Errorf("Verify(no data) with corrupt chunks: got %v, want nil (it only checks existence)", err)
		}
		f.CorruptGets(nil)
		var victim string
		f.Unwrap().List(ctx, "chunks/", func(oi cas.ObjectInfo) error { victim = oi.Key; return nil })
		if err := f.Delete(ctx, victim); err != nil {
			t.Fatal(err)
		}
		rep, err = st.Verify(ctx, false)
		if !errors.Is(err, blockdiff.ErrNotFound) || len(rep.Missing) != 1 || !strings.HasSuffix(victim, rep.Missing[0].String()) {
			t.Errorf("Verify with a missing chunk: got %+v, %v; want it missing, ErrNotFound", rep.Missing, err)
		}
	})

	t.Run("CrashBeforeSnapshot", func(t *testing.T) {
		f := NewFaulty(newBackend(t))
		data := Volume(30, 16*bs, bs)
		boom := errors.New("power cut")
		k := &snapFail{f: f, err: boom} // every snapshot write fails
		st2 := open(t, k, cas.Options{})
		if _, err := Backup(ctx, st2, "crash", data, bs); !errors.Is(err, boom) {
			t.Fatalf("backup with a failing snapshot write: got %v, want %v", err, boom)
		}
		if infos, err := st2.List(ctx); err != nil || len(infos) != 0 {
			t.Fatalf("List after failed commit: got %d snapshots, %v; want none", len(infos), err)
		}
		k.err = nil
		if _, err := Backup(ctx, st2, "crash", data, bs); err != nil {
			t.Fatalf("backup again: %v", err)
		}
		if got, err := Restore(ctx, st2, "crash"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("restore: %v", err)
		}
	})
}

// snapFail fails Puts of snapshot objects with err (when not nil).
type snapFail struct {
	f   *Faulty
	err error
}

func (s *snapFail) Get(ctx context.Context, key string) ([]byte, error) { return s.f.Get(ctx, key) }
func (s *snapFail) Has(ctx context.Context, key string) (bool, error)   { return s.f.Has(ctx, key) }
func (s *snapFail) Delete(ctx context.Context, key string) error        { return s.f.Delete(ctx, key) }
func (s *snapFail) List(ctx context.Context, p string, fn func(cas.ObjectInfo) error) error {
	return s.f.List(ctx, p, fn)
}
func (s *snapFail) Put(ctx context.Context, key string, data []byte) error {
	if s.err != nil && strings.HasPrefix(key, "snapshots/") {
		return s.err
	}
	return s.f.Put(ctx, key, data)
}
