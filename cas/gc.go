package cas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"golang.org/x/sync/errgroup"
)

// GCOptions configure [Store.GC]. The zero value works.
type GCOptions struct {
	// Grace keeps unreferenced chunks and manifests younger than this
	// (by the backend's modification time). 0 means 1 hour; a negative
	// value means no grace: every unreferenced object may go.
	Grace time.Duration
	// DryRun counts what would be deleted without deleting it.
	DryRun bool
}

// GCStats count what [Store.GC] found and did.
type GCStats struct {
	Snapshots    int   // snapshots read
	Referenced   int   // distinct chunks they reference
	Chunks       int   // chunks listed
	Deleted      int   // chunks and manifests deleted (or that would be, in a dry run)
	DeletedBytes int64 // their stored size
	Young        int   // unreferenced objects kept for being younger than Grace
	TempFiles    int   // leftover temporary files of crashed writers removed (directory backend)
}

// GC deletes chunks and manifests that no snapshot references. It takes
// the gc lock marker first and gives up with [ErrBusy] while any backup
// holds a fresh marker; a backup started during gc fails the same way. It
// never deletes an object younger than the grace period. Before deleting
// anything it changes the store's gc epoch, which invalidates every
// digest cache. See the package documentation for why this is safe.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCStats, error) {
	var st GCStats
	grace := opts.Grace
	if grace == 0 {
		grace = time.Hour
	}
	start := time.Now()
	cutoff := start.Add(-grace)
	if grace < 0 {
		cutoff = start.Add(time.Hour) // everything is old enough
	}
	lock := lockPrefix + "gc-" + randomHex(8)
	if err := s.acquire(ctx, lock, "gc", "", "backup-", "gc-"); err != nil {
		return st, err
	}
	defer func() {
		// Released on a fresh context so that a canceled gc still unlocks.
		s.b.Delete(context.WithoutCancel(ctx), lock)
	}()

	snaps, refManifests, refChunks, err := s.references(ctx)
	if err != nil {
		return st, fmt.Errorf("cas: gc: %w (nothing was deleted)", err)
	}
	st.Snapshots, st.Referenced = len(snaps), len(refChunks)

	type victim struct {
		key  string
		size int64
	}
	var victims []victim
	consider := func(oi ObjectInfo, referenced bool) {
		if referenced {
			return
		}
		if !oi.ModTime.Before(cutoff) {
			st.Young++
			return
		}
		victims = append(victims, victim{oi.Key, oi.Size})
	}
	err = s.b.List(ctx, manPrefix, func(oi ObjectInfo) error {
		id, err := blockdiff.ParseDigest(strings.TrimPrefix(oi.Key, manPrefix))
		if err != nil {
			return nil // not ours
		}
		_, ok := refManifests[id]
		consider(oi, ok)
		return nil
	})
	if err == nil {
		err = s.b.List(ctx, chunkPrefix, func(oi ObjectInfo) error {
			d, ok := parseChunkKey(oi.Key)
			if !ok {
				return nil
			}
			st.Chunks++
			_, ok = refChunks[d]
			consider(oi, ok)
			return nil
		})
	}
	if err != nil {
		return st, fmt.Errorf("cas: gc: %w (nothing was deleted)", err)
	}
	st.Deleted = len(victims)
	for _, v := range victims {
		st.DeletedBytes += v.size
	}
	if !opts.DryRun {
		// Temporary files older than the grace period belong to writers
		// that crashed: a live Put renames its file within seconds.
		for b := s.b; b != nil; {
			if d, ok := b.(*Dir); ok {
				st.TempFiles, err = d.removeTemp(ctx, cutoff)
				if err != nil {
					return st, fmt.Errorf("cas: gc: %w", err)
				}
				break
			}
			u, ok := b.(Unwrapper)
			if !ok {
				break
			}
			b = u.Unwrap()
		}
	}
	if opts.DryRun || len(victims) == 0 {
		return st, nil
	}
	// Keep the gc lock fresh while deleting; stop if it could have gone
	// stale (a stalled process), since a backup may then have started.
	var lockMu sync.Mutex
	lastRefresh := start
	keepLock := func(ctx context.Context, force bool) error {
		lockMu.Lock()
		defer lockMu.Unlock()
		if !force && time.Since(lastRefresh) < s.opts.StaleAfter/4 {
			return nil
		}
		if time.Since(lastRefresh) > s.opts.StaleAfter/2 {
			return fmt.Errorf("cas: gc: lock marker not refreshed for %v (StaleAfter %v), a backup may have started: %w; run gc again", time.Since(lastRefresh).Round(time.Millisecond), s.opts.StaleAfter, ErrBusy)
		}
		if err := s.putLock(ctx, lock, "gc", ""); err != nil {
			return err
		}
		lastRefresh = time.Now()
		return nil
	}
	if err := keepLock(ctx, true); err != nil {
		return st, fmt.Errorf("%w (nothing was deleted)", err)
	}
	if err := s.b.Put(ctx, epochKey, []byte(randomHex(16))); err != nil {
		return st, fmt.Errorf("cas: gc: write new epoch: %w (nothing was deleted)", err)
	}
	var deleted atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for _, v := range victims {
		g.Go(func() error {
			if err := keepLock(gctx, false); err != nil {
				return err
			}
			if err := s.b.Delete(gctx, v.key); err != nil {
				return err
			}
			deleted.Add(1)
			return nil
		})
	}
	err = g.Wait()
	st.Deleted = int(deleted.Load())
	s.log.InfoContext(ctx, "cas: gc done", "snapshots", st.Snapshots, "chunks", st.Chunks, "deleted", st.Deleted, "young", st.Young)
	if err != nil {
		return st, fmt.Errorf("cas: gc: deleted %d of %d unreferenced objects: %w", st.Deleted, len(victims), err)
	}
	return st, nil
}

// references reads every snapshot and its manifest and returns the
// snapshots, the manifests they name and the data chunks those reference.
func (s *Store) references(ctx context.Context) ([]SnapshotInfo, map[blockdiff.Digest]struct{}, map[blockdiff.Digest]struct{}, error) {
	snaps, err := s.List(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	mans := make(map[blockdiff.Digest]struct{})
	for _, si := range snaps {
		mans[si.Manifest] = struct{}{}
	}
	chunks := make(map[blockdiff.Digest]struct{})
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(s.opts.Concurrency, 4)) // manifests can be large
	for id := range mans {
		g.Go(func() error {
			m, err := s.readManifest(gctx, id)
			if err != nil {
				return err
			}
			it := m.Iter()
			mu.Lock()
			defer mu.Unlock()
			for {
				e, err := it.Next()
				if err != nil {
					return nil
				}
				if e.Kind == blockdiff.Data {
					chunks[e.Digest] = struct{}{}
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, nil, err
	}
	return snaps, mans, chunks, nil
}

// VerifyReport is what [Store.Verify] found.
type VerifyReport struct {
	Snapshots int                // snapshots checked
	Chunks    int                // distinct chunks referenced
	Read      int64              // chunks read and hashed (with readData)
	Missing   []blockdiff.Digest // referenced chunks that do not exist
	Corrupt   []blockdiff.Digest // chunks whose content does not hash to their name
}

// Verify checks that every snapshot's manifest is intact and every chunk
// it references exists; with readData it also reads every referenced chunk
// and checks its hash. Problems are listed in the report and the error
// wraps [blockdiff.ErrNotFound] (missing) and/or [blockdiff.ErrChecksum]
// (corrupt). Verify takes no lock: it reads only.
func (s *Store) Verify(ctx context.Context, readData bool) (VerifyReport, error) {
	var rep VerifyReport
	snaps, _, refs, err := s.references(ctx)
	if err != nil {
		return rep, fmt.Errorf("cas: verify: %w", err)
	}
	rep.Snapshots, rep.Chunks = len(snaps), len(refs)
	present := make(map[blockdiff.Digest]struct{}, len(refs))
	err = s.b.List(ctx, chunkPrefix, func(oi ObjectInfo) error {
		if d, ok := parseChunkKey(oi.Key); ok {
			if _, ref := refs[d]; ref {
				present[d] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("cas: verify: %w", err)
	}
	for d := range refs {
		if _, ok := present[d]; !ok {
			rep.Missing = append(rep.Missing, d)
		}
	}
	if readData {
		var mu sync.Mutex
		var read atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.opts.Concurrency)
		for d := range present {
			g.Go(func() error {
				p := s.getBuf()
				defer s.putBuf(p)
				out, err := s.ReadChunk(gctx, d, (*p)[:0])
				if out != nil && cap(out) > cap(*p) {
					*p = out[:0]
				}
				read.Add(1)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, blockdiff.ErrChecksum):
					rep.Corrupt = append(rep.Corrupt, d)
				case errors.Is(err, blockdiff.ErrNotFound):
					rep.Missing = append(rep.Missing, d)
				case err != nil:
					return err
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return rep, fmt.Errorf("cas: verify: %w", err)
		}
		rep.Read = read.Load()
	}
	var errs []error
	if n := len(rep.Missing); n > 0 {
		errs = append(errs, fmt.Errorf("cas: verify: %d referenced chunks missing (first %s): %w; back the affected volumes up again", n, rep.Missing[0], blockdiff.ErrNotFound))
	}
	if n := len(rep.Corrupt); n > 0 {
		errs = append(errs, fmt.Errorf("cas: verify: %d chunks corrupt (first %s): %w; delete them and back the affected volumes up again", n, rep.Corrupt[0], blockdiff.ErrChecksum))
	}
	return rep, errors.Join(errs...)
}
