package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/time/rate"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// maxRun caps the blocks of one zero/skip run task, so that progress and
// the journal advance in steps.
const maxRun = 4096

// engine is the state of one Run.
type engine struct {
	src  blockdiff.Source
	dst  blockdiff.Sink
	opts Options
	geom blockdiff.Geometry
	log  *slog.Logger

	plan     PlanKind
	base     *blockdiff.Manifest // what the target holds, or nil (full copy)
	out      *blockdiff.Manifest // the target after the run
	zeroer   blockdiff.Zeroer
	copier   blockdiff.Copier
	haser    blockdiff.Haser      // with referencer: a store that may hold contents
	referer  blockdiff.Referencer // already
	limiter  *rate.Limiter
	workers  int
	pool     *bufPool
	zeroBuf  []byte // BlockSize zero bytes, when the sink has no Zeroer
	zeroFull blockdiff.Digest
	zeroLast blockdiff.Digest

	skipZero, skipHoles bool // full copy: which zero blocks may be left out

	done    bitset // blocks completed by an earlier run (journal)
	written bitset // blocks this plan wrote, zeroed or copied (for VerifyWritten)
	jr      *journal
	stats   Stats
	prog    progress
}

// Run replicates src onto dst: it chooses the cheapest truthful plan (see
// [PlanKind]), reads what changed, writes it, optionally verifies it, and
// commits dst with the resulting manifest, which it returns in the
// [Result]. Run does not Close dst.
//
// src and dst must have equal geometry (open the sink with the source's
// geometry; growing a file target is the sink's job). On error the target
// is left uncommitted and the journal, if any, keeps the progress so that
// a later Run with the same arguments resumes.
func Run(ctx context.Context, src blockdiff.Source, dst blockdiff.Sink, opts Options) (*Result, error) {
	start := time.Now()
	e, err := newEngine(src, dst, opts)
	if err != nil {
		return nil, err
	}
	if err := e.checkSame(); err != nil {
		return nil, err
	}
	fp0, err := fingerprint(ctx, src)
	if err != nil {
		return nil, err
	}

	pl, err := e.choosePlan(ctx)
	if err != nil {
		return nil, err
	}
	e.plan = pl.kind
	e.log.Info("replicate: plan chosen", "plan", pl.kind, "geometry", e.geom.String(), "workers", e.workers)

	if opts.Journal != "" {
		id := planIdentity{
			Format:      journalFormat,
			Plan:        pl.kind,
			Source:      e.opts.SourceID,
			Target:      e.opts.TargetID,
			Geometry:    e.geom.String(),
			Fingerprint: fp0,
			SourceID:    pl.sourceManifestID,
		}
		if opts.Base != nil {
			bid, err := opts.Base.ID()
			if err != nil {
				return nil, fmt.Errorf("replicate: base manifest: %w", err)
			}
			id.Base = bid.String()
		}
		e.done = newBitset(e.geom.Blocks())
		jr, err := openJournal(opts.Journal, id, e.geom.Blocks(), dst, e.resume)
		if err != nil {
			return nil, err
		}
		e.jr = jr
		if n := e.stats.Resumed; n > 0 {
			e.log.Info("replicate: resuming from journal", "journal", opts.Journal, "blocks_done", n)
		}
	}

	if pl.prepare != nil {
		err = pl.prepare(ctx)
	}
	if err == nil {
		err = e.copyPhase(ctx, pl)
	}
	if err == nil {
		var fp1 string
		fp1, err = fingerprint(ctx, src)
		if ch, ok := src.(changer); ok && err == nil {
			if cerr := ch.Changed(); cerr != nil {
				err = fmt.Errorf("replicate: %w: %w; the copy is not a consistent image, run again from a snapshot or a quiet source", ErrSourceChanged, cerr)
				e.discardJournal()
			}
		}
		if err == nil && fp1 != fp0 {
			err = fmt.Errorf("replicate: source fingerprint was %q at the start and is %q now: %w; the copy is not a consistent image, run again from a snapshot or a quiet source",
				fp0, fp1, ErrSourceChanged)
			e.discardJournal()
		}
	}
	if err == nil {
		err = e.verifyPhase(ctx)
		if err != nil {
			e.discardJournal()
		}
	}
	if err == nil {
		if cerr := dst.Commit(ctx, e.out); cerr != nil {
			err = fmt.Errorf("replicate: commit target: %w", cerr)
		}
	}
	if err != nil {
		if e.jr != nil {
			// Keep what was done for the next run, even if ctx is done.
			err = errors.Join(err, e.jr.close(ctx))
		}
		return nil, err
	}
	if e.jr != nil {
		if err := e.jr.remove(); err != nil {
			return nil, err
		}
	}
	e.stats.Duration = time.Since(start)
	if s := e.stats.Duration.Seconds(); s > 0 {
		e.stats.Rate = float64(e.geom.Size) / s
	}
	return &Result{Plan: e.plan, Stats: e.stats, Manifest: e.out}, nil
}

func newEngine(src blockdiff.Source, dst blockdiff.Sink, opts Options) (*engine, error) {
	if src == nil || dst == nil {
		return nil, errors.New("replicate: source and sink must not be nil")
	}
	g := src.Geometry()
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("replicate: source: %w", err)
	}
	if dg := dst.Geometry(); dg != g {
		return nil, fmt.Errorf("replicate: target geometry %v differs from source %v; open the target with the source's geometry: %w",
			dg, g, blockdiff.ErrGeometry)
	}
	if opts.Base != nil && opts.Base.Geometry() != g {
		return nil, fmt.Errorf("replicate: base manifest geometry %v differs from source %v; pass the manifest saved for this target, or none for a full copy: %w",
			opts.Base.Geometry(), g, blockdiff.ErrGeometry)
	}
	if opts.Concurrency < 0 || opts.MaxInFlight < 0 || opts.BWLimit < 0 || opts.ProgressInterval < 0 {
		return nil, errors.New("replicate: Concurrency, MaxInFlight, BWLimit and ProgressInterval must not be negative")
	}
	if opts.Verify > VerifyAll || opts.Zero > ZeroSkip {
		return nil, fmt.Errorf("replicate: unknown Verify mode %d or Zero policy %d", opts.Verify, opts.Zero)
	}
	if opts.Verify != VerifyNone {
		if _, ok := dst.(blockdiff.Source); !ok {
			return nil, fmt.Errorf("replicate: Verify %s needs a sink that can be read back (%T cannot); use VerifyNone and run replicate.Verify on the committed target", opts.Verify, dst)
		}
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.SourceID == "" {
		opts.SourceID = volumeID(src)
	}
	if opts.TargetID == "" {
		opts.TargetID = volumeID(dst)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &engine{src: src, dst: dst, opts: opts, geom: g, log: log}
	lanes := opts.lanes
	if lanes == 0 {
		lanes = hashing.Lanes()
	}
	var perWorker int
	e.workers, perWorker = shape(opts.Concurrency, opts.MaxInFlight, g.BlockSize, lanes)
	e.pool = newBufPool(e.workers, perWorker, g.BlockSize)
	e.zeroer, _ = dst.(blockdiff.Zeroer)
	e.copier, _ = dst.(blockdiff.Copier)
	e.haser, _ = dst.(blockdiff.Haser)
	e.referer, _ = dst.(blockdiff.Referencer)
	if e.haser == nil || e.referer == nil {
		e.haser, e.referer = nil, nil
	}
	if e.zeroer == nil {
		e.zeroBuf = make([]byte, g.BlockSize)
	}
	if opts.BWLimit > 0 {
		e.limiter = rate.NewLimiter(rate.Limit(opts.BWLimit), g.BlockSize)
	}
	e.zeroFull = hashing.ZeroDigest(g.BlockSize)
	if n := g.Blocks(); n > 0 {
		e.zeroLast = hashing.ZeroDigest(g.BlockLen(n - 1))
	}
	uz, _ := dst.(UnwrittenZero)
	fresh := uz != nil && uz.UnwrittenZero()
	switch opts.Zero {
	case ZeroAuto:
		e.skipZero, e.skipHoles = fresh, fresh
	case ZeroAlways:
	case ZeroSkipHoles:
		e.skipHoles = true
	case ZeroSkip:
		e.skipZero, e.skipHoles = true, true
	}
	e.prog = progress{fn: opts.Progress, interval: opts.ProgressInterval}
	e.written = newBitset(g.Blocks())
	return e, nil
}

// checkSame refuses a source and target that are the same volume.
func (e *engine) checkSame() error {
	if e.opts.SourceID != "" && e.opts.SourceID == e.opts.TargetID {
		return fmt.Errorf("replicate: source and target are both %q: %w; choose another target", e.opts.SourceID, ErrSameVolume)
	}
	if sp, ok := e.src.(pather); ok {
		if dp, ok := e.dst.(pather); ok {
			a, err1 := os.Stat(sp.Path())
			b, err2 := os.Stat(dp.Path())
			if err1 == nil && err2 == nil && os.SameFile(a, b) {
				return fmt.Errorf("replicate: source %s and target %s are the same file: %w; choose another target", sp.Path(), dp.Path(), ErrSameVolume)
			}
		}
	}
	ss, ok1 := e.src.(Stater)
	ds, ok2 := e.dst.(Stater)
	if ok1 && ok2 {
		a, err := ss.Stat()
		if err != nil {
			return fmt.Errorf("replicate: stat source: %w", err)
		}
		b, err := ds.Stat()
		if err != nil {
			return fmt.Errorf("replicate: stat target: %w", err)
		}
		if os.SameFile(a, b) {
			return fmt.Errorf("replicate: source and target are the same file (%s): %w; choose another target", a.Name(), ErrSameVolume)
		}
	}
	return nil
}

// pather is what source.File and sink.File have: the path they opened.
type pather interface{ Path() string }

// stamper is what source.File has: size and modification time at open.
type stamper interface {
	Stamp() (size int64, mtime time.Time)
}

// changer is what source.File has: an error when it changed since open.
type changer interface{ Changed() error }

// volumeID names v from [Identifier], or from the path it was opened at.
func volumeID(v any) string {
	if id, ok := v.(Identifier); ok {
		return id.ID()
	}
	if p, ok := v.(pather); ok {
		if abs, err := filepath.Abs(p.Path()); err == nil {
			return "file:" + abs
		}
		return "file:" + p.Path()
	}
	return ""
}

// fingerprint returns the source's [Fingerprinter] fingerprint, or its
// size and modification time at open, or "".
func fingerprint(ctx context.Context, src blockdiff.Source) (string, error) {
	f, ok := src.(Fingerprinter)
	if !ok {
		if st, ok := src.(stamper); ok {
			size, mtime := st.Stamp()
			return fmt.Sprintf("size=%d mtime=%s", size, mtime.UTC().Format(time.RFC3339Nano)), nil
		}
		return "", nil
	}
	s, err := f.Fingerprint(ctx)
	if err != nil {
		return "", fmt.Errorf("replicate: fingerprint source: %w", err)
	}
	return s, nil
}

func (e *engine) zeroDigest(n int) blockdiff.Digest {
	if n == e.geom.BlockSize {
		return e.zeroFull
	}
	return e.zeroLast
}

// resume applies one journal record: its blocks are done and their
// resulting entries known.
func (e *engine) resume(r journalRecord) {
	for i := r.index; i < r.index+r.count; i++ {
		if e.done.has(i) {
			continue
		}
		e.done.set(i)
		e.stats.Resumed++
		_ = e.out.Set(i, r.kind, r.digest) // range checked when decoded
	}
	switch r.act {
	case actWritten, actZeroed, actDedup, actCopied, actReferenced:
		e.written.setRange(r.index, r.count)
	}
}

func (e *engine) isDone(i int64) bool { return e.done != nil && e.done.has(i) }

func (e *engine) discardJournal() {
	if e.jr != nil {
		_ = e.jr.remove()
		e.jr = nil
	}
}

// write sends one block to the sink, under the bandwidth limit.
func (e *engine) write(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	if e.limiter != nil {
		if err := e.limiter.WaitN(ctx, len(b)); err != nil {
			return err
		}
	}
	if err := e.dst.WriteBlock(ctx, i, b, d); err != nil {
		return blockErr("write", "sink", i, err)
	}
	return nil
}

// zeroRun makes blocks [first, first+count) read as zeros, with the
// sink's Zeroer or else by writing zero bytes. Either way the blocks count
// as Zeroed, not in BytesWritten.
func (e *engine) zeroRun(ctx context.Context, first, count int64) error {
	if e.zeroer != nil {
		if err := e.zeroer.ZeroBlocks(ctx, blockdiff.Extent{First: first, Count: count}); err != nil {
			return blockErr("zero", "sink", first, err)
		}
		return nil
	}
	for i := first; i < first+count; i++ {
		n := e.geom.BlockLen(i)
		if err := e.write(ctx, i, e.zeroBuf[:n], e.zeroDigest(n)); err != nil {
			return err
		}
	}
	return nil
}

// targetHolds reports whether the target is known to hold content (kind,
// digest) at block i already.
func (e *engine) targetHolds(i int64, k blockdiff.Kind, d blockdiff.Digest) bool {
	bk := e.base.Kind(i)
	if k.IsZero() {
		return bk.IsZero()
	}
	return bk == blockdiff.Data && e.base.Entry(i).Digest == d
}

// work is the copy phase's workFunc.
func (e *engine) work(ctx context.Context, s *slab, t task, send func(result) error) error {
	switch t.op {
	case opBlock:
		return e.doBlocks(ctx, s, t.index, int(t.count), send)
	case opRun:
		r := result{index: t.index, count: t.count, kind: t.kind, digest: e.zeroDigest(e.geom.BlockLen(t.index))}
		switch {
		case t.zero:
			if err := e.zeroRun(ctx, t.index, t.count); err != nil {
				return err
			}
			r.act = actZeroed
		case e.base != nil:
			r.act = actSkipUnchanged
		default:
			r.act = actSkipZero
		}
		return send(r)
	case opGroup:
		return e.doGroup(ctx, s.bufs[0], t.grp, send)
	}
	return fmt.Errorf("replicate: internal error: unknown task %d", t.op)
}

// doBlocks is the streaming step of plans change-list, hash-base,
// live-target and full for the count consecutive blocks from first (at
// most the slab's lanes): read them all, zero-check, hash the rest side by
// side with one SumBatch, then per block compare and write with the data
// already in hand, reporting each block as it is done.
func (e *engine) doBlocks(ctx context.Context, s *slab, first int64, count int, send func(result) error) error {
	for k := range count {
		i := first + int64(k)
		if _, err := e.src.ReadBlock(ctx, i, s.bufs[k][:e.geom.BlockLen(i)]); err != nil {
			return blockErr("read", "source", i, err)
		}
	}
	e.hashSlab(s, first, count)
	if err := e.askHeld(ctx, s, first, count); err != nil {
		return err
	}
	for k := range count {
		i := first + int64(k)
		n := e.geom.BlockLen(i)
		b := s.bufs[k][:n]
		r := result{index: i, count: 1, read: int64(n), kind: s.kinds[k], digest: s.digests[k]}
		switch {
		case e.base != nil && e.targetHolds(i, r.kind, r.digest):
			r.act = actSkipUnchanged
		case r.kind == blockdiff.Data && s.held[k]:
			if err := e.referer.WriteRef(ctx, i, r.digest); err != nil {
				return blockErr("write", "sink", i, err)
			}
			r.act = actReferenced
		case r.kind == blockdiff.Data:
			if err := e.write(ctx, i, b, r.digest); err != nil {
				return err
			}
			r.act, r.wrote = actWritten, int64(n)
		case e.base == nil && e.skipZero:
			r.act = actSkipZero
		default:
			if err := e.zeroRun(ctx, i, 1); err != nil {
				return err
			}
			r.act = actZeroed
		}
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// askHeld sets s.held for the count blocks from first: when the sink is a
// store ([blockdiff.Haser] and [blockdiff.Referencer]), whether it already
// holds the content of each data block the target needs, found with one
// HasDigests call for the whole task; otherwise all false.
func (e *engine) askHeld(ctx context.Context, s *slab, first int64, count int) error {
	held := s.held[:count]
	clear(held)
	if e.haser == nil {
		return nil
	}
	s.ask = s.ask[:0]
	s.pos = s.pos[:0]
	for k := range count {
		i := first + int64(k)
		if s.kinds[k] != blockdiff.Data || (e.base != nil && e.targetHolds(i, s.kinds[k], s.digests[k])) {
			continue
		}
		s.ask = append(s.ask, s.digests[k])
		s.pos = append(s.pos, k)
	}
	if len(s.ask) == 0 {
		return nil
	}
	has := s.has[:len(s.ask)]
	clear(has)
	if err := e.haser.HasDigests(ctx, s.ask, has); err != nil {
		return blockErr("has", "sink", first+int64(s.pos[0]), err)
	}
	for x, k := range s.pos {
		held[k] = has[x]
	}
	return nil
}

// hashSlab hashes the count blocks from first held in s.bufs.
func (e *engine) hashSlab(s *slab, first int64, count int) {
	views := s.views[:count]
	for k := range views {
		views[k] = s.bufs[k][:e.geom.BlockLen(first+int64(k))]
	}
	s.hash(views, e.zeroDigest)
}

// doGroup handles one distinct content of a change set: the sink copies
// it from an unchanged index it already holds, or records references to
// content a store already has, or it is read once and written from the
// buffer in hand to every index that needs it (the first counts as
// written, the rest as deduplicated).
func (e *engine) doGroup(ctx context.Context, buf []byte, g *groupTask, send func(result) error) error {
	if e.haser != nil {
		ds, has := [1]blockdiff.Digest{g.digest}, [1]bool{}
		if err := e.haser.HasDigests(ctx, ds[:], has[:]); err != nil {
			return blockErr("has", "sink", g.indices[0], err)
		}
		if has[0] {
			for _, i := range g.indices {
				if err := e.referer.WriteRef(ctx, i, g.digest); err != nil {
					return blockErr("write", "sink", i, err)
				}
				if err := send(result{index: i, count: 1, kind: blockdiff.Data, digest: g.digest, act: actReferenced}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if g.local >= 0 && e.copier != nil {
		for _, i := range g.indices {
			if err := e.copier.CopyBlock(ctx, i, g.local); err != nil {
				return blockErr("copy", "sink", i, err)
			}
			if err := send(result{index: i, count: 1, kind: blockdiff.Data, digest: g.digest, act: actCopied}); err != nil {
				return err
			}
		}
		return nil
	}
	first := g.indices[0]
	b := buf[:g.length]
	if _, err := e.src.ReadBlock(ctx, first, b); err != nil {
		return blockErr("read", "source", first, err)
	}
	if d := sum256(b); d != g.digest {
		return blockErr("read", "source", first, fmt.Errorf("read digest %s, the source's manifest says %s; the source changed since its manifest was made: %w",
			d, g.digest, blockdiff.ErrChecksum))
	}
	for k, i := range g.indices {
		if e.geom.BlockLen(i) != g.length {
			return blockErr("write", "sink", i, fmt.Errorf("group of %d-byte blocks holds a block of %d bytes: %w", g.length, e.geom.BlockLen(i), blockdiff.ErrCorrupt))
		}
		if err := e.write(ctx, i, b, g.digest); err != nil {
			return err
		}
		r := result{index: i, count: 1, kind: blockdiff.Data, digest: g.digest, act: actDedup, wrote: int64(g.length)}
		if k == 0 {
			r.act, r.read = actWritten, int64(g.length)
		}
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// collect is the copy phase's collector: it records the block in the
// target manifest, the stats, the journal and progress.
func (e *engine) collect(ctx context.Context, r result) error {
	for i := r.index; i < r.index+r.count; i++ {
		if err := e.out.Set(i, r.kind, r.digest); err != nil {
			return fmt.Errorf("replicate: %w", err)
		}
	}
	s := &e.stats
	if r.read > 0 {
		s.Read++
		s.BytesRead += r.read
	}
	s.BytesWritten += r.wrote
	switch r.act {
	case actWritten:
		s.Written += r.count
	case actZeroed:
		s.Zeroed += r.count
	case actSkipUnchanged:
		s.SkippedUnchanged += r.count
	case actSkipZero:
		s.SkippedZero += r.count
	case actDedup:
		s.Deduplicated += r.count
	case actCopied:
		s.CopiedLocal += r.count
	case actReferenced:
		s.Referenced += r.count
	}
	switch r.act {
	case actWritten, actZeroed, actDedup, actCopied, actReferenced:
		e.written.setRange(r.index, r.count)
	}
	if e.jr != nil {
		if err := e.jr.append(ctx, &r); err != nil {
			return err
		}
	}
	e.prog.add(&r, e.bytesOf(r.index, r.count))
	return nil
}

func (e *engine) bytesOf(first, count int64) int64 { return bytesOf(e.geom, first, count) }

// copyPhase runs the plan's producer through the pipeline.
func (e *engine) copyPhase(ctx context.Context, pl *plan) error {
	e.stats.Planned = e.geom.Blocks()
	e.prog.begin(e.plan, "copy", pl.blocks-e.stats.Resumed, pl.bytes-e.stats.Resumed*int64(e.geom.BlockSize))
	err := pipeline(ctx, e.workers, e.pool, pl.produce, e.work, e.collect)
	if e.jr != nil {
		if serr := e.jr.sync(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = serr
		}
	}
	e.prog.end()
	return err
}
