package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blockferry/blockferry/blockdiff"
)

// plan is what choosePlan decided: its kind, how many blocks it covers,
// and the producer that feeds the copy pipeline.
type plan struct {
	kind             PlanKind
	blocks, bytes    int64 // blocks and bytes the copy phase examines
	produce          func(ctx context.Context, emit func(task) error) error
	sourceManifestID string                          // plan manifest: ID of the source's manifest (journal identity)
	prepare          func(ctx context.Context) error // run after the journal is read, or nil
}

// choosePlan picks the cheapest truthful plan, in DESIGN.md's order, and
// prepares e.base and e.out.
func (e *engine) choosePlan(ctx context.Context) (*plan, error) {
	base := e.opts.Base
	n := e.geom.Blocks()
	out, err := blockdiff.NewManifest(e.geom)
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	out.Origin = e.opts.SourceID
	if cl, ok := e.src.(blockdiff.ChangeLister); ok {
		out.Origin = cl.ID()
	}
	e.out = out

	// (a) The source lists its own changes since the version the target holds.
	if cl, ok := e.src.(blockdiff.ChangeLister); ok && base != nil && base.Origin != "" {
		var exts []blockdiff.Extent
		err := cl.ChangesSince(ctx, base.Origin, func(x blockdiff.Extent) error {
			if x.First < 0 || x.Count < 0 || x.End() > n {
				return fmt.Errorf("replicate: source listed changed blocks %d+%d outside its %d blocks: %w", x.First, x.Count, n, blockdiff.ErrOutOfRange)
			}
			exts = append(exts, x)
			return nil
		})
		switch {
		case err == nil:
			if err := copyManifest(out, base); err != nil {
				return nil, err
			}
			e.base = base
			var listed int64
			for _, x := range exts {
				listed += x.Count
			}
			e.stats.SkippedUnchanged = n - listed
			return &plan{
				kind: PlanChangeList, blocks: listed, bytes: listed * int64(e.geom.BlockSize),
				produce: func(ctx context.Context, emit func(task) error) error {
					return e.produceListed(ctx, emit, exts)
				},
			}, nil
		case errors.Is(err, blockdiff.ErrUnrelated):
			e.log.Info("replicate: source cannot list changes since the base; falling back", "base", base.Origin, "err", err)
		default:
			return nil, fmt.Errorf("replicate: list changes since %q: %w", base.Origin, err)
		}
	}

	// (b) Both sides' digests are known: pure compute.
	if mf, ok := e.src.(blockdiff.Manifester); ok && base != nil {
		p, err := e.manifestPlan(ctx, mf, base)
		if err != nil {
			return nil, err
		}
		return p, nil
	}

	// (b') The source's digests are known and the target is readable:
	// hash the target (local, holes skipped), then the same pure-compute
	// plan as (b) against the target's manifest.
	if mf, ok := e.src.(blockdiff.Manifester); ok && base == nil {
		if live, ok := e.dst.(blockdiff.Source); ok {
			return e.liveManifestPlan(ctx, mf, live)
		}
	}

	p := &plan{kind: PlanFull, blocks: n, bytes: e.geom.Size, produce: e.produceAll}
	switch {
	case base != nil:
		// (c) Hash the source and compare with the base.
		p.kind, e.base = PlanHashBase, base
	default:
		if live, ok := e.dst.(blockdiff.Source); ok {
			// (d) Hash the live target (after the journal is read, so
			// that done blocks are skipped), then stream the source
			// against it.
			p.kind = PlanLiveTarget
			p.prepare = func(ctx context.Context) error {
				m, err := e.hashTarget(ctx, live)
				e.base = m
				return err
			}
		}
	}
	return p, nil
}

// produceAll feeds every block of the volume: data extents block by block,
// holes (never read) in runs.
func (e *engine) produceAll(ctx context.Context, emit func(task) error) error {
	return walkVolume(ctx, e.src, e.geom.Blocks(), "source",
		func(first, end int64) error { return e.emitHoles(emit, first, end) },
		func(first, end int64) error { return e.emitBlocks(emit, first, end) })
}

// walkVolume splits blocks [0, n) of v into runs in ascending order:
// holes(first, end) for blocks v reports as holes (never to be read), and
// data(first, end) for the rest. A v that is not a [blockdiff.Extenter] is
// data throughout. side names v in errors ("source", "target").
func walkVolume(ctx context.Context, v any, n int64, side string, holes, data func(first, end int64) error) error {
	ext, ok := v.(blockdiff.Extenter)
	if !ok {
		return data(0, n)
	}
	next := int64(0)
	err := ext.Extents(ctx, func(x blockdiff.Extent) error {
		first, end := max(x.First, next), min(x.End(), n)
		if first >= end {
			return nil
		}
		if err := holes(next, first); err != nil {
			return err
		}
		if err := data(first, end); err != nil {
			return err
		}
		next = end
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("replicate: list %s extents: %w", side, err)
	}
	return holes(next, n)
}

// produceListed feeds the blocks of the changed extents exts (ascending,
// not overlapping); where the source is an Extenter, listed blocks in its
// holes are not read but zeroed (or skipped where the base is zero).
func (e *engine) produceListed(ctx context.Context, emit func(task) error, exts []blockdiff.Extent) error {
	ext, ok := e.src.(blockdiff.Extenter)
	if !ok {
		for _, x := range exts {
			if err := e.emitBlocks(emit, x.First, x.End()); err != nil {
				return err
			}
		}
		return nil
	}
	k, pos := 0, int64(0) // exts[k] is handled below pos
	err := ext.Extents(ctx, func(d blockdiff.Extent) error {
		for ; k < len(exts); k++ {
			lo, hi := max(exts[k].First, pos), exts[k].End()
			if lo >= d.End() {
				return nil
			}
			if lo < d.First {
				h := min(hi, d.First)
				if err := e.emitHoles(emit, lo, h); err != nil {
					return err
				}
				lo = h
			}
			if lo < hi {
				h := min(hi, d.End())
				if err := e.emitBlocks(emit, lo, h); err != nil {
					return err
				}
				lo = h
			}
			pos = lo
			if lo < hi {
				return nil // the rest of exts[k] lies past d
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("replicate: list source extents: %w", err)
	}
	for ; k < len(exts); k++ {
		if err := e.emitHoles(emit, max(exts[k].First, pos), exts[k].End()); err != nil {
			return err
		}
	}
	return nil
}

// emitBlocks emits read tasks for the blocks of [first, end) not done,
// each covering up to the pool's lanes consecutive blocks.
func (e *engine) emitBlocks(emit func(task) error, first, end int64) error {
	return emitBatches(emit, opBlock, first, end, e.pool.lanes, func(i int64) bool { return !e.isDone(i) })
}

// emitBatches emits tasks of op over the blocks of [first, end) for which
// want is true, each covering up to lanes consecutive such blocks.
func emitBatches(emit func(task) error, o op, first, end int64, lanes int, want func(int64) bool) error {
	for i := first; i < end; {
		if !want(i) {
			i++
			continue
		}
		j := i + 1
		for j < end && j-i < int64(lanes) && want(j) {
			j++
		}
		if err := emit(task{op: o, index: i, count: j - i}); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// emitHoles emits runs over the source holes [first, end): runs to zero
// where the target may hold data, runs to skip elsewhere.
func (e *engine) emitHoles(emit func(task) error, first, end int64) error {
	return e.emitRuns(emit, first, end, blockdiff.Hole, func(i int64) bool {
		if e.base != nil {
			return e.base.Kind(i) == blockdiff.Data
		}
		return !e.skipHoles
	})
}

// emitRuns emits opRun tasks of kind k over [first, end), skipping done
// blocks and splitting where zero(i) changes or a run reaches maxRun.
func (e *engine) emitRuns(emit func(task) error, first, end int64, k blockdiff.Kind, zero func(int64) bool) error {
	for i := first; i < end; {
		if e.isDone(i) {
			i++
			continue
		}
		z := zero(i)
		j := i + 1
		for j < end && j-i < maxRun && !e.isDone(j) && zero(j) == z {
			j++
		}
		if err := emit(task{op: opRun, zero: z, kind: k, index: i, count: j - i}); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// copyManifest sets every entry of dst from src (same geometry).
func copyManifest(dst, src *blockdiff.Manifest) error {
	it := src.Iter()
	for {
		en, err := it.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("replicate: copy manifest: %w", err)
		}
		if err := dst.Set(en.Index, en.Kind, en.Digest); err != nil {
			return fmt.Errorf("replicate: copy manifest: %w", err)
		}
	}
}

// hashTarget reads and hashes the live target into a manifest (phase
// "hash-target"), skipping what it reports as holes.
func (e *engine) hashTarget(ctx context.Context, live blockdiff.Source) (*blockdiff.Manifest, error) {
	m, err := blockdiff.NewManifest(e.geom)
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	// Blocks a journal lists as done need no hashing.
	var sel bitset
	todo := e.geom.Blocks()
	if e.done != nil {
		sel = newBitset(todo)
		for i := range todo {
			if !e.done.has(i) {
				sel.set(i)
			}
		}
		todo -= e.stats.Resumed
	}
	e.prog.begin(e.plan, "hash-target", todo, todo*int64(e.geom.BlockSize))
	err = scan(ctx, e.workers, e.pool, live, "target", sel, &e.prog, func(r result) error {
		if r.read > 0 {
			e.stats.BytesRead += r.read
		}
		for i := r.index; i < r.index+r.count; i++ {
			if err := m.Set(i, r.kind, r.digest); err != nil {
				return err
			}
		}
		return nil
	})
	e.prog.end()
	if err != nil {
		return nil, fmt.Errorf("replicate: hash the live target: %w", err)
	}
	return m, nil
}

// scan reads the blocks of v selected by sel (all when nil), except those
// v reports as holes, hashes them, and calls fn for each block or hole run
// from one goroutine.
//
// scan looks like [blockdiff.HashEntries] (parallel hashing in SumBatch
// batches, holes not read) but does not reuse it, because it would need
// four contortions: (1) HashEntries cannot skip blocks a journal lists as
// done, so v would have to be wrapped in an Extenter reporting them as
// holes; (2) its read errors name Side "source", while a scanned target
// must say "target", so errors would have to be rewritten; (3) it keeps
// its own (Concurrency+1) × batch buffers outside the engine's pool and
// MaxInFlight (with Buffers sized to fit, the batch falls to one block
// for the default two workers); (4) it delivers entries in index order,
// a head-of-line wait that scan does not need, since fn only sets
// manifest entries and counts. scan shares the engine's pool, workers and
// progress instead, and batches through the same [slab.hash] as the copy.
func scan(ctx context.Context, workers int, pool *bufPool, v blockdiff.Source, side string, sel bitset,
	prog *progress, fn func(result) error) error {
	g := v.Geometry()
	n := g.Blocks()
	zeroFull := blockdiff.Digest(zeroDigest(g.BlockSize))
	zeroLast := zeroFull
	if n > 0 {
		zeroLast = zeroDigest(g.BlockLen(n - 1))
	}
	zd := func(l int) blockdiff.Digest {
		if l == g.BlockSize {
			return zeroFull
		}
		return zeroLast
	}
	selected := func(i int64) bool { return sel == nil || sel.has(i) }
	blocks := func(emit func(task) error, first, end int64) error {
		return emitBatches(emit, opHash, first, end, pool.lanes, selected)
	}
	holes := func(emit func(task) error, first, end int64) error {
		for i := first; i < end; {
			if !selected(i) {
				i++
				continue
			}
			j := i + 1
			for j < end && j-i < maxRun && selected(j) {
				j++
			}
			if err := emit(task{op: opHoleRun, index: i, count: j - i}); err != nil {
				return err
			}
			i = j
		}
		return nil
	}
	produce := func(ctx context.Context, emit func(task) error) error {
		return walkVolume(ctx, v, n, side,
			func(first, end int64) error { return holes(emit, first, end) },
			func(first, end int64) error { return blocks(emit, first, end) })
	}
	work := func(ctx context.Context, s *slab, t task, send func(result) error) error {
		if t.op == opHoleRun {
			return send(result{index: t.index, count: t.count, kind: blockdiff.Hole, digest: zd(g.BlockLen(t.index)), act: actHashed})
		}
		views := s.views[:t.count]
		for k := range views {
			i := t.index + int64(k)
			views[k] = s.bufs[k][:g.BlockLen(i)]
			if _, err := v.ReadBlock(ctx, i, views[k]); err != nil {
				return blockErr("read", side, i, err)
			}
		}
		s.hash(views, zd)
		for k := range views {
			r := result{index: t.index + int64(k), count: 1, read: int64(len(views[k])), act: actHashed, kind: s.kinds[k], digest: s.digests[k]}
			if err := send(r); err != nil {
				return err
			}
		}
		return nil
	}
	collect := func(_ context.Context, r result) error {
		if err := fn(r); err != nil {
			return err
		}
		prog.add(&r, bytesOf(g, r.index, r.count))
		return nil
	}
	return pipeline(ctx, workers, pool, produce, work, collect)
}

func bytesOf(g blockdiff.Geometry, first, count int64) int64 {
	end := min(g.Offset(first+count), g.Size)
	return end - g.Offset(first)
}

// sourceManifest returns the source's manifest, checked against the
// source's geometry, and its ID.
func (e *engine) sourceManifest(ctx context.Context, mf blockdiff.Manifester) (*blockdiff.Manifest, string, error) {
	sm, err := mf.Manifest(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("replicate: source manifest: %w", err)
	}
	if sm.Geometry() != e.geom {
		return nil, "", fmt.Errorf("replicate: source manifest geometry %v differs from the source's %v: %w", sm.Geometry(), e.geom, blockdiff.ErrGeometry)
	}
	sid, err := sm.ID()
	if err != nil {
		return nil, "", fmt.Errorf("replicate: source manifest: %w", err)
	}
	origin := e.out.Origin
	if err := copyManifest(e.out, sm); err != nil {
		return nil, "", err
	}
	e.out.Origin = origin
	if e.out.Origin == "" {
		e.out.Origin = sm.Origin
	}
	return sm, sid.String(), nil
}

// manifestPlan is plan (b): the source's manifest is diffed against the
// base without reading data; each distinct changed content is read once
// and written to every index needing it, or copied by the sink from an
// unchanged index that already holds it.
func (e *engine) manifestPlan(ctx context.Context, mf blockdiff.Manifester, base *blockdiff.Manifest) (*plan, error) {
	sm, sid, err := e.sourceManifest(ctx, mf)
	if err != nil {
		return nil, err
	}
	p := &plan{kind: PlanManifest, sourceManifestID: sid}
	if err := e.diffPlan(p, base, sm); err != nil {
		return nil, err
	}
	// Done blocks are in the change set (the base is what the target
	// held before the first run) and count as Resumed.
	e.stats.SkippedUnchanged = e.geom.Blocks() - p.blocks
	return p, nil
}

// liveManifestPlan is plan (b'): no base, the source's manifest is known
// and the target readable. After the journal is read, the target is
// hashed into a manifest (blocks the journal lists as done are taken from
// the source's manifest instead, since the target now holds them), and
// the plan then runs as (b) against it: only changed contents are read
// from the source, each once.
func (e *engine) liveManifestPlan(ctx context.Context, mf blockdiff.Manifester, live blockdiff.Source) (*plan, error) {
	sm, sid, err := e.sourceManifest(ctx, mf)
	if err != nil {
		return nil, err
	}
	p := &plan{kind: PlanLiveManifest, sourceManifestID: sid}
	p.prepare = func(ctx context.Context) error {
		tm, err := e.hashTarget(ctx, live)
		if err != nil {
			return err
		}
		if e.done != nil {
			for i := range e.geom.Blocks() {
				if e.done.has(i) {
					en := sm.Entry(i)
					if err := tm.Set(i, en.Kind, en.Digest); err != nil {
						return fmt.Errorf("replicate: %w", err)
					}
				}
			}
		}
		if err := e.diffPlan(p, tm, sm); err != nil {
			return err
		}
		// Done blocks are unchanged against tm and count as Resumed;
		// copyPhase subtracts them from the planned blocks again.
		e.stats.SkippedUnchanged = e.geom.Blocks() - p.blocks - e.stats.Resumed
		p.blocks += e.stats.Resumed
		p.bytes += e.stats.Resumed * int64(e.geom.BlockSize)
		return nil
	}
	return p, nil
}

// diffPlan diffs base against the source's manifest sm and sets p's
// blocks, bytes and producer and e.base: each distinct changed content is
// one group task, then the runs to zero.
func (e *engine) diffPlan(p *plan, base, sm *blockdiff.Manifest) error {
	cs, err := blockdiff.Diff(base.Iter(), sm.Iter())
	if err != nil {
		return fmt.Errorf("replicate: diff base and source manifests: %w", err)
	}
	if e.copier != nil {
		if err := cs.FindLocal(base.Iter()); err != nil {
			return fmt.Errorf("replicate: %w", err)
		}
	}
	e.base = base
	n := cs.Len()
	p.blocks, p.bytes = n, n*int64(e.geom.BlockSize)
	p.produce = func(ctx context.Context, emit func(task) error) error {
		err := cs.Groups(func(g blockdiff.Group) error {
			idx := make([]int64, 0, len(g.Indices))
			for _, i := range g.Indices {
				if !e.isDone(i) {
					idx = append(idx, i)
				}
			}
			if len(idx) == 0 {
				return nil
			}
			return emit(task{op: opGroup, grp: &groupTask{digest: g.Digest, length: g.Len, indices: idx, local: g.Local}})
		})
		if err != nil {
			return err
		}
		return cs.ZeroRuns(func(x blockdiff.Extent) error {
			return e.emitRuns(emit, x.First, x.End(), blockdiff.Zero, func(int64) bool { return true })
		})
	}
	return nil
}
