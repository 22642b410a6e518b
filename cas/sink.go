package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// SnapshotOptions describe a snapshot being backed up. The zero value works.
type SnapshotOptions struct {
	// Tags are free-form labels stored with the snapshot; nil means none.
	Tags map[string]string
	// Time is the snapshot's time; the zero value means the time of Commit.
	Time time.Time
	// Parent names an earlier snapshot (usually the last one of the same
	// volume) whose chunks count as stored without asking the backend, so
	// an incremental backup costs one manifest read instead of a request
	// per block. "" means none.
	Parent string
}

// Stats count what a [SnapshotSink] did. Before Commit, DataBlocks,
// ZeroBlocks and LogicalBytes count the blocks given to the sink; after
// Commit they describe the committed snapshot, including the blocks the
// caller left out (unchanged, or zero since the sink reports
// [SnapshotSink.UnwrittenZero]).
type Stats struct {
	DataBlocks   int64 // data blocks recorded in the snapshot so far
	ZeroBlocks   int64 // zero and hole blocks recorded (never stored)
	LogicalBytes int64 // bytes of the data blocks recorded
	Uploaded     int64 // chunks this sink stored
	UploadedRaw  int64 // bytes of those chunks before compression
	StoredBytes  int64 // bytes of those chunks as stored
	HasRequests  int64 // existence requests sent to the backend
	CacheHits    int64 // digests found in the local cache or already seen
}

// Deduped returns how many data blocks were not stored because the store
// held (or this sink had just stored) their content.
func (st Stats) Deduped() int64 { return st.DataBlocks - st.Uploaded }

// DedupeRatio returns LogicalBytes / StoredBytes: how many times smaller
// the new data stored is than the data recorded, dedupe and compression
// together. It is +Inf when data was recorded but nothing stored, and 0
// when nothing was recorded.
func (st Stats) DedupeRatio() float64 {
	switch {
	case st.LogicalBytes == 0:
		return 0
	case st.StoredBytes == 0:
		return math.Inf(1)
	}
	return float64(st.LogicalBytes) / float64(st.StoredBytes)
}

// SnapshotSink backs a volume up into the store as snapshot name. It is a
// [blockdiff.Sink] that is also a [blockdiff.Haser] and a
// [blockdiff.Referencer]: contents the store has are recorded without being
// sent. Blocks never written are holes. Commit writes the snapshot last,
// after checking that every chunk its manifest names exists. WriteBlock,
// WriteRef and HasDigests are safe for concurrent use.
type SnapshotSink struct {
	s     *Store
	name  string
	g     blockdiff.Geometry
	opts  SnapshotOptions
	lock  string // our backup lock marker
	epoch string // gc epoch when the backup started
	cache *digestCache

	zero, zeroLast blockdiff.Digest

	mu      sync.Mutex // guards m and the sets
	m       *blockdiff.Manifest
	known   map[blockdiff.Digest]struct{} // in the store
	learned []blockdiff.Digest            // known this session, for the cache
	// absent: the chunk listing at the start was complete, so every
	// digest not in known was missing from the store then.
	absent bool
	// missing holds the digests HasDigests recently found missing, so
	// that WriteBlock does not ask again; missRing bounds it, oldest
	// first out at missNext.
	missing  map[blockdiff.Digest]struct{}
	missRing []blockdiff.Digest
	missNext int

	sf singleflight.Group

	dataBlocks, zeroBlocks, logical   atomic.Int64
	uploaded, uploadedRaw, storedSize atomic.Int64
	hasReqs, cacheHits                atomic.Int64

	refreshMu   sync.Mutex
	lastRefresh atomic.Int64 // unix nanoseconds

	state atomic.Int32 // 0 open, 1 committed, 2 closed
	err   error        // first commit error, guarded by mu
}

var (
	_ blockdiff.Sink       = (*SnapshotSink)(nil)
	_ blockdiff.Haser      = (*SnapshotSink)(nil)
	_ blockdiff.Referencer = (*SnapshotSink)(nil)
	// replicate.UnwrittenZero, by method set (cas does not import replicate).
	_ interface{ UnwrittenZero() bool } = (*SnapshotSink)(nil)
)

// NewSnapshotSink starts a backup of a volume of geometry g as snapshot
// name. It writes a backup lock marker that keeps [Store.GC] away until
// Commit or Close; it fails with [ErrBusy] while a gc runs and with
// [ErrExists] when the name is taken.
func (s *Store) NewSnapshotSink(ctx context.Context, name string, g blockdiff.Geometry, opts SnapshotOptions) (*SnapshotSink, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("cas: backup %q: %w", name, err)
	}
	if err := s.checkFree(ctx, name); err != nil {
		return nil, err
	}
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		return nil, err
	}
	k := &SnapshotSink{
		s: s, name: name, g: g, opts: opts, m: m,
		lock:  lockPrefix + "backup-" + randomHex(8),
		known: make(map[blockdiff.Digest]struct{}),
		zero:  hashing.ZeroDigest(g.BlockSize),
	}
	if n := g.Blocks(); n > 0 {
		k.zeroLast = hashing.ZeroDigest(g.BlockLen(n - 1))
	}
	if err := s.acquire(ctx, k.lock, "backup", name, "gc-"); err != nil {
		return nil, err
	}
	k.lastRefresh.Store(time.Now().UnixNano())
	if k.epoch, err = s.epoch(ctx); err != nil {
		return nil, errors.Join(err, k.release())
	}
	if opts.Parent != "" {
		if err := k.loadParent(ctx, opts.Parent); err != nil {
			return nil, errors.Join(err, k.release())
		}
	}
	if err := k.listChunks(ctx); err != nil {
		return nil, errors.Join(err, k.release())
	}
	if s.opts.CacheDir != "" {
		k.cache, err = openDigestCache(s.opts.CacheDir, s.id, k.epoch, k.known)
		if err != nil {
			s.log.WarnContext(ctx, "cas: digest cache unusable, asking the backend instead", "dir", s.opts.CacheDir, "err", err)
			k.cache = nil
		}
	}
	s.log.DebugContext(ctx, "cas: backup started", "snapshot", name, "geometry", g.String(), "cached_digests", len(k.known))
	return k, nil
}

// errListFull stops the chunk listing at its bound.
var errListFull = errors.New("cas: chunk listing bound reached")

// listChunks lists the store's chunk keys, after the lock marker is
// written, up to min(ListChunks, max(blocks, 1000)) of them, and adds them
// to the known set. When the listing ends within the bound, k.absent is
// set: every other digest was missing when the backup started. That only
// ever makes the sink send a chunk (harmless if a concurrent backup
// stored it meanwhile: same key, same bytes), never skip one. Listed
// chunks are as safe to reference as HasDigests answers: a gc cannot run
// while our marker is fresh, and one that deletes anyway changes the
// epoch, which Commit checks. A listing that fails is logged and ignored.
func (k *SnapshotSink) listChunks(ctx context.Context) error {
	limit := k.s.opts.ListChunks
	if limit < 0 {
		return nil
	}
	limit = min(limit, int(min(max(k.g.Blocks(), 1000), math.MaxInt32)))
	var found []blockdiff.Digest
	err := k.s.b.List(ctx, chunkPrefix, func(oi ObjectInfo) error {
		d, ok := parseChunkKey(oi.Key)
		if !ok {
			return nil
		}
		if len(found) == limit {
			return errListFull
		}
		found = append(found, d)
		return nil
	})
	switch {
	case err == nil:
		k.absent = true
	case errors.Is(err, errListFull):
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		k.s.log.WarnContext(ctx, "cas: could not list chunks; asking the backend about each digest instead", "snapshot", k.name, "err", err)
		return nil
	}
	for _, d := range found {
		k.known[d] = struct{}{}
	}
	k.s.log.DebugContext(ctx, "cas: listed chunks", "snapshot", k.name, "chunks", len(found), "complete", k.absent)
	return nil
}

// missingCap bounds the digests remembered as missing between HasDigests
// and WriteBlock (the engine writes a task's blocks right after asking).
const missingCap = 4096

// noteMissing remembers that the store lacked d.
func (k *SnapshotSink) noteMissing(d blockdiff.Digest) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.missing[d]; ok {
		return
	}
	if k.missing == nil {
		k.missing = make(map[blockdiff.Digest]struct{})
		k.missRing = make([]blockdiff.Digest, 0, missingCap)
	}
	if len(k.missRing) < missingCap {
		k.missRing = append(k.missRing, d)
	} else {
		delete(k.missing, k.missRing[k.missNext])
		k.missRing[k.missNext] = d
		k.missNext = (k.missNext + 1) % missingCap
	}
	k.missing[d] = struct{}{}
}

// knownMissing reports whether d was missing from the store: at the start
// (complete listing) or when HasDigests asked recently, and forgets the
// latter. A stale answer only makes the sink send d again.
func (k *SnapshotSink) knownMissing(d blockdiff.Digest) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.known[d]; ok {
		return false
	}
	if k.absent {
		return true
	}
	if _, ok := k.missing[d]; ok {
		delete(k.missing, d) // its ring slot is reused in turn
		return true
	}
	return false
}

// loadParent adds the data digests of snapshot name to the known set.
func (k *SnapshotSink) loadParent(ctx context.Context, name string) error {
	info, err := k.s.Show(ctx, name)
	if err != nil {
		return fmt.Errorf("cas: backup %q: parent: %w", k.name, err)
	}
	m, err := k.s.readManifest(ctx, info.Manifest)
	if err != nil {
		return fmt.Errorf("cas: backup %q: parent %q: %w", k.name, name, err)
	}
	it := m.Iter()
	for {
		e, err := it.Next()
		if err != nil {
			return nil
		}
		if e.Kind == blockdiff.Data {
			k.known[e.Digest] = struct{}{}
		}
	}
}

func (s *Store) checkFree(ctx context.Context, name string) error {
	has, err := s.b.Has(ctx, snapPrefix+name)
	if err != nil {
		return fmt.Errorf("cas: backup %q: %w", name, err)
	}
	if has {
		return fmt.Errorf("cas: backup: snapshot %q: %w (delete it or choose another name)", name, ErrExists)
	}
	return nil
}

// Geometry returns the geometry the backup was started with.
func (k *SnapshotSink) Geometry() blockdiff.Geometry { return k.g }

// Stats returns what the sink has done so far.
func (k *SnapshotSink) Stats() Stats {
	return Stats{
		DataBlocks: k.dataBlocks.Load(), ZeroBlocks: k.zeroBlocks.Load(), LogicalBytes: k.logical.Load(),
		Uploaded: k.uploaded.Load(), UploadedRaw: k.uploadedRaw.Load(), StoredBytes: k.storedSize.Load(),
		HasRequests: k.hasReqs.Load(), CacheHits: k.cacheHits.Load(),
	}
}

func (k *SnapshotSink) usable() error {
	switch k.state.Load() {
	case 1:
		return fmt.Errorf("cas: backup %q: already committed: %w", k.name, blockdiff.ErrClosed)
	case 2:
		return fmt.Errorf("cas: backup %q: %w", k.name, blockdiff.ErrClosed)
	}
	return nil
}

func (k *SnapshotSink) isZeroDigest(d blockdiff.Digest) bool { return d == k.zero || d == k.zeroLast }

func (k *SnapshotSink) isKnown(d blockdiff.Digest) bool {
	k.mu.Lock()
	_, ok := k.known[d]
	k.mu.Unlock()
	return ok
}

func (k *SnapshotSink) learn(d blockdiff.Digest) {
	k.mu.Lock()
	if _, ok := k.known[d]; !ok {
		k.known[d] = struct{}{}
		k.learned = append(k.learned, d)
	}
	k.mu.Unlock()
}

func (k *SnapshotSink) set(index int64, kind blockdiff.Kind, d blockdiff.Digest, n int) error {
	k.mu.Lock()
	prev := k.m.Kind(index)
	err := k.m.Set(index, kind, d)
	k.mu.Unlock()
	if err != nil {
		return err
	}
	if prev == blockdiff.Data { // rewritten block: undo its count
		k.dataBlocks.Add(-1)
		k.logical.Add(-int64(n))
	} else if prev == blockdiff.Zero {
		k.zeroBlocks.Add(-1)
	}
	if kind == blockdiff.Data {
		k.dataBlocks.Add(1)
		k.logical.Add(int64(n))
	} else {
		k.zeroBlocks.Add(1)
	}
	return nil
}

// refresh rewrites the lock marker when it is older than StaleAfter/4, so
// that a long backup is never taken for a crashed one.
func (k *SnapshotSink) refresh(ctx context.Context) error {
	every := k.s.opts.StaleAfter / 4
	if time.Since(time.Unix(0, k.lastRefresh.Load())) < every || !k.refreshMu.TryLock() {
		return nil
	}
	defer k.refreshMu.Unlock()
	if err := k.s.putLock(ctx, k.lock, "backup", k.name); err != nil {
		return err
	}
	k.lastRefresh.Store(time.Now().UnixNano())
	return nil
}

func (k *SnapshotSink) blockErr(op string, index int64, err error) error {
	return &blockdiff.BlockError{Op: op, Side: "sink", Index: index, Err: err}
}

func (k *SnapshotSink) checkIndex(index int64, n int) error {
	if index < 0 || index >= k.g.Blocks() {
		return fmt.Errorf("cas: backup %q has %d blocks: %w", k.name, k.g.Blocks(), blockdiff.ErrOutOfRange)
	}
	if want := k.g.BlockLen(index); n != want {
		return fmt.Errorf("cas: backup %q: got %d bytes, the block has %d: %w", k.name, n, want, blockdiff.ErrGeometry)
	}
	return nil
}

// WriteBlock records block index as data (whose SHA-256 is d) and stores
// its chunk unless the store already has it: a digest not already known
// (cache, parent, HasDigests, this sink) is checked with one existence
// request before the chunk is sent. An all-zero block is recorded as zero
// and not stored. Concurrent writes of one content send it once.
func (k *SnapshotSink) WriteBlock(ctx context.Context, index int64, data []byte, d blockdiff.Digest) error {
	if err := k.usable(); err != nil {
		return k.blockErr("write", index, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := k.checkIndex(index, len(data)); err != nil {
		return k.blockErr("write", index, err)
	}
	if hashing.IsZero(data) {
		return k.set(index, blockdiff.Zero, d, len(data))
	}
	if err := k.refresh(ctx); err != nil {
		return k.blockErr("write", index, err)
	}
	if k.isKnown(d) {
		k.cacheHits.Add(1)
	} else {
		_, err, _ := k.sf.Do(string(d[:]), func() (any, error) {
			if k.isKnown(d) {
				return nil, nil
			}
			// A HEAD or stat is much cheaper than sending the block,
			// unless the store is known to lack it already.
			if !k.knownMissing(d) {
				k.hasReqs.Add(1)
				if has, err := k.s.HasChunk(ctx, d); err != nil {
					return nil, err
				} else if has {
					k.learn(d)
					return nil, nil
				}
			}
			n, err := k.s.putChunk(ctx, d, data)
			if err != nil {
				return nil, err
			}
			k.uploaded.Add(1)
			k.uploadedRaw.Add(int64(len(data)))
			k.storedSize.Add(int64(n))
			k.learn(d)
			return nil, nil
		})
		if err != nil {
			return k.blockErr("write", index, err)
		}
	}
	return k.set(index, blockdiff.Data, d, len(data))
}

// WriteRef records block index as holding content d, which the store must
// already have (as reported by HasDigests, or stored by this sink). A zero
// digest records a zero block. A digest the store lacks gives an error
// wrapping [blockdiff.ErrNotFound].
func (k *SnapshotSink) WriteRef(ctx context.Context, index int64, d blockdiff.Digest) error {
	if err := k.usable(); err != nil {
		return k.blockErr("write", index, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := k.checkIndex(index, k.g.BlockLen(index)); err != nil {
		return k.blockErr("write", index, err)
	}
	n := k.g.BlockLen(index)
	if d == hashing.ZeroDigest(n) {
		return k.set(index, blockdiff.Zero, d, n)
	}
	if err := k.refresh(ctx); err != nil {
		return k.blockErr("write", index, err)
	}
	if !k.isKnown(d) {
		k.hasReqs.Add(1)
		has, err := k.s.HasChunk(ctx, d)
		if err != nil {
			return k.blockErr("write", index, err)
		}
		if !has {
			return k.blockErr("write", index, fmt.Errorf("cas: reference to chunk %s the store lacks: %w", d, blockdiff.ErrNotFound))
		}
		k.learn(d)
	} else {
		k.cacheHits.Add(1)
	}
	return k.set(index, blockdiff.Data, d, n)
}

// HasDigests sets has[i] for each ds[i] the store holds, answering from the
// digests already known (the local cache, the parent, the chunk listing
// at the start, earlier answers, chunks just stored) and asking the
// backend about the rest, Concurrency at a time; when the listing at the
// start was complete, digests it did not name are reported missing
// without asking. The zero-block digests are always held. A digest
// reported missing is remembered for a while, so that WriteBlock sends it
// without asking again.
func (k *SnapshotSink) HasDigests(ctx context.Context, ds []blockdiff.Digest, has []bool) error {
	if err := k.usable(); err != nil {
		return err
	}
	return k.hasDigests(ctx, ds, has, true)
}

// hasDigests is HasDigests; with trustAbsent false it asks the backend
// about every unknown digest, as Commit must before it names them.
func (k *SnapshotSink) hasDigests(ctx context.Context, ds []blockdiff.Digest, has []bool, trustAbsent bool) error {
	if len(has) != len(ds) {
		return fmt.Errorf("cas: HasDigests: %d results for %d digests", len(has), len(ds))
	}
	if err := k.refresh(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(k.s.opts.Concurrency)
	for i, d := range ds {
		if k.isZeroDigest(d) || k.isKnown(d) {
			has[i] = true
			k.cacheHits.Add(1)
			continue
		}
		if trustAbsent && k.absent {
			has[i] = false
			continue
		}
		g.Go(func() error {
			k.hasReqs.Add(1)
			ok, err := k.s.HasChunk(gctx, d)
			if err != nil {
				return err
			}
			has[i] = ok
			if ok {
				k.learn(d)
			} else if trustAbsent {
				k.noteMissing(d)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("cas: backup %q: %w", k.name, err)
	}
	return nil
}

// Commit checks that every data block of m (nil: the blocks written to
// this sink) names a chunk the store holds, makes the chunks durable, writes
// the manifest and then, last, the snapshot. A gc that ran during the
// backup (after its lock marker went stale) makes Commit fail with
// [ErrBusy] rather than risk a snapshot pointing at deleted chunks.
func (k *SnapshotSink) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	if err := k.usable(); err != nil {
		return err
	}
	if m == nil {
		m = k.m
	}
	err := k.commit(ctx, m)
	if err != nil {
		return err
	}
	k.state.Store(1)
	return errors.Join(k.release(), k.saveCache())
}

func (k *SnapshotSink) commit(ctx context.Context, m *blockdiff.Manifest) error {
	s := k.s
	if m.Geometry() != k.g {
		return fmt.Errorf("cas: backup %q: commit manifest of %v, backup started with %v: %w", k.name, m.Geometry(), k.g, blockdiff.ErrGeometry)
	}
	// Every data digest must be in the store.
	var unknown []blockdiff.Digest
	var unknownIdx []int64
	var dataBlocks, zeroBlocks, logical int64
	seen := make(map[blockdiff.Digest]struct{})
	it := m.Iter()
	for {
		e, err := it.Next()
		if err != nil {
			break
		}
		if e.Kind != blockdiff.Data {
			zeroBlocks++
			continue
		}
		dataBlocks++
		logical += int64(k.g.BlockLen(e.Index))
		if k.isKnown(e.Digest) {
			continue
		}
		if _, ok := seen[e.Digest]; !ok {
			seen[e.Digest] = struct{}{}
			unknown = append(unknown, e.Digest)
			unknownIdx = append(unknownIdx, e.Index)
		}
	}
	if len(unknown) > 0 {
		has := make([]bool, len(unknown))
		if err := k.hasDigests(ctx, unknown, has, false); err != nil {
			return err
		}
		for i, ok := range has {
			if !ok {
				return fmt.Errorf("cas: backup %q: commit: block %d names chunk %s that the store lacks (%d such contents): %w", k.name, unknownIdx[i], unknown[i], countFalse(has), blockdiff.ErrNotFound)
			}
		}
	}
	if err := k.s.sync(ctx); err != nil {
		return err
	}
	if ep, err := s.epoch(ctx); err != nil {
		return err
	} else if ep != k.epoch {
		return fmt.Errorf("cas: backup %q: a gc deleted chunks while this backup ran (its lock marker went stale after %v): %w; run the backup again", k.name, s.opts.StaleAfter, ErrBusy)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return fmt.Errorf("cas: backup %q: encode manifest: %w", k.name, err)
	}
	id := blockdiff.Digest(hashing.Sum256(buf.Bytes()))
	if err := s.b.Put(ctx, manPrefix+id.String(), buf.Bytes()); err != nil {
		return fmt.Errorf("cas: backup %q: write manifest: %w", k.name, err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	if err := s.checkFree(ctx, k.name); err != nil {
		return err
	}
	data, zero, hole := m.Counts()
	info := SnapshotInfo{
		Name: k.name, Time: k.opts.Time, Tags: maps.Clone(k.opts.Tags), Geometry: k.g,
		Manifest: id, Origin: m.Origin, DataBlocks: data, ZeroBlocks: zero, HoleBlocks: hole,
	}
	if info.Time.IsZero() {
		info.Time = time.Now()
	}
	if err := s.b.Put(ctx, snapPrefix+k.name, info.marshal()); err != nil {
		return fmt.Errorf("cas: backup %q: write snapshot: %w", k.name, err)
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	k.dataBlocks.Store(dataBlocks)
	k.zeroBlocks.Store(zeroBlocks)
	k.logical.Store(logical)
	st := k.Stats()
	s.log.InfoContext(ctx, "cas: snapshot committed", "snapshot", k.name, "manifest", id.String(),
		"data_blocks", data, "uploaded", st.Uploaded, "stored_bytes", st.StoredBytes)
	return nil
}

func countFalse(b []bool) (n int) {
	for _, v := range b {
		if !v {
			n++
		}
	}
	return n
}

func (s *Store) sync(ctx context.Context) error {
	if sy, ok := s.b.(Syncer); ok {
		return sy.Sync(ctx)
	}
	return nil
}

// release removes the backup lock marker.
func (k *SnapshotSink) release() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.s.b.Delete(ctx, k.lock); err != nil {
		return fmt.Errorf("cas: backup %q: remove lock marker: %w", k.name, err)
	}
	return nil
}

func (k *SnapshotSink) saveCache() error {
	if k.cache == nil {
		return nil
	}
	k.mu.Lock()
	learned := k.learned
	k.learned = nil
	k.mu.Unlock()
	if err := k.cache.append(learned); err != nil {
		k.s.log.Warn("cas: could not update the digest cache", "err", err)
	}
	return nil
}

// Close ends the backup. Without Commit it leaves the chunks stored so far
// (a later backup reuses them; gc removes them once unreferenced) and no
// snapshot. Close after Commit only releases resources.
func (k *SnapshotSink) Close() error {
	switch k.state.Swap(2) {
	case 0:
		return k.release()
	}
	return nil
}

// UnwrittenZero reports true: a snapshot reads every block it was not
// given as zeros (a hole), since it starts empty whatever the store holds.
// The replication engine then leaves a full copy's zero blocks out instead
// of sending them (see replicate.UnwrittenZero).
func (k *SnapshotSink) UnwrittenZero() bool { return true }

// Sync makes the chunks stored so far durable (see [Syncer]); the
// replication engine calls it before recording progress in its journal.
func (k *SnapshotSink) Sync(ctx context.Context) error { return k.s.sync(ctx) }

// ID names the backup target stably across processes,
// "cas:<store id>#<snapshot name>", for the replication journal.
func (k *SnapshotSink) ID() string { return "cas:" + k.s.id + "#" + k.name }
