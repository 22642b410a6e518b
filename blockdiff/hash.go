package blockdiff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blockferry/blockferry/hashing"
)

// HashOptions configures [HashSource] and [HashEntries]. The zero value
// works.
type HashOptions struct {
	// Concurrency is how many goroutines read and hash blocks at once.
	// Zero means runtime.GOMAXPROCS(0). Negative is an error.
	Concurrency int

	// Buffers bounds memory: at most this many block buffers (each
	// Geometry().BlockSize bytes) exist at once. They are grouped in
	// Concurrency+1 batches so that one batch is being read while the
	// others hash. Zero means (Concurrency+1) × max(4, [hashing.Lanes]())
	// buffers: 2.5 MiB per goroutine for 512 KiB blocks, 8.5 MiB with
	// AVX-512's 16 lanes. A value below Concurrency+1 is raised to it.
	// Negative is an error.
	Buffers int

	// Progress, if set, is called after each batch of entries has been
	// passed on, from the goroutine that called HashSource or HashEntries,
	// with running totals. It must be quick: hashing waits for it.
	Progress func(HashProgress)

	// Logger, if set, receives one Debug record when hashing starts and one
	// when it ends. Nil means silent.
	Logger *slog.Logger
}

// HashProgress is the running total passed to [HashOptions.Progress].
type HashProgress struct {
	Blocks int64 // entries passed on so far (holes included)
	Bytes  int64 // volume bytes those entries cover (holes included)
	Read   int64 // bytes actually read from the source
	Total  int64 // Geometry().Blocks(): entries there will be in all
}

// HashSource reads and hashes every block of src in parallel and returns its
// manifest. See [HashEntries] for what is read and how; HashSource always
// reads the source, even one that implements [Manifester].
func HashSource(ctx context.Context, src Source, opts HashOptions) (*Manifest, error) {
	m, err := NewManifest(src.Geometry())
	if err != nil {
		return nil, fmt.Errorf("blockdiff: hash source: %w", err)
	}
	err = HashEntries(ctx, src, opts, func(e Entry) error {
		if e.Kind == Hole { // NewManifest starts all holes
			return nil
		}
		return m.Set(e.Index, e.Kind, e.Digest)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// HashEntries reads and hashes every block of src in parallel and calls fn
// with one [Entry] per block, in ascending index order, from the calling
// goroutine. Nothing but the entries in flight is held, so a volume of any
// size can be streamed into a manifest [Writer].
//
// Blocks outside the extents of a source that implements [Extenter] are
// reported as [Hole] without being read. Every block read is checked for
// zeros first: an all-zero block is reported as [Zero] with the zero-block
// digest of its length ([hashing.ZeroDigest]) and not hashed. Other blocks
// are hashed in batches with [hashing.SumBatch] so that multi-buffer SIMD
// lanes are full.
//
// # Errors
//
// A failed or short read gives a *[BlockError] {Op: "read", Side: "source"}
// naming the block. An error from fn stops hashing and is returned as is.
// When ctx is done HashEntries stops, waits for its goroutines, and returns
// an error wrapping ctx.Err(). Nothing is passed to fn after an error.
//
// # Concurrency
//
// src.ReadBlock is called from opts.Concurrency goroutines at once. fn and
// opts.Progress are called from the caller's goroutine only. No goroutine
// outlives the call.
func HashEntries(ctx context.Context, src Source, opts HashOptions, fn func(Entry) error) error {
	g := src.Geometry()
	if err := g.Validate(); err != nil {
		return fmt.Errorf("blockdiff: hash source: %w", err)
	}
	if fn == nil {
		return errors.New("blockdiff: hash source: nil entry callback")
	}
	conc, batch, err := opts.shape(g.Blocks())
	if err != nil {
		return err
	}
	h := &hasher{
		src: src, geom: g, batch: batch, conc: conc,
		free:  make(chan *hashJob, conc+1),
		work:  make(chan *hashJob, conc+1),
		order: make(chan *hashJob, conc+1),
	}
	for range conc + 1 {
		h.free <- &hashJob{done: make(chan struct{}, 1)}
	}

	start := time.Now()
	if opts.Logger != nil {
		single, batchEngine := hashing.Default()
		opts.Logger.Debug("blockdiff: hashing source", "geometry", g.String(),
			"concurrency", conc, "batch", batch, "engine", single.String(), "batch_engine", batchEngine.String())
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, gctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return h.produce(gctx) })
	for range conc {
		eg.Go(func() error { return h.hashWorker(gctx) })
	}
	p, cerr := h.collect(gctx, opts.Progress, fn)
	if cerr != nil {
		cancel() // the collector stopped early: stop the producer and workers
	}
	werr := eg.Wait()

	var cb callbackError
	switch {
	case cerr == nil && werr == nil && p.Blocks == p.Total:
		err = nil
	case errors.As(cerr, &cb):
		err = cb.err
	case parent.Err() != nil:
		err = fmt.Errorf("blockdiff: hashing stopped after %d of %d blocks: %w", p.Blocks, p.Total, parent.Err())
	case werr != nil:
		err = werr
	case cerr != nil:
		err = cerr
	case p.Blocks != p.Total:
		err = fmt.Errorf("blockdiff: hashing ended after %d of %d blocks", p.Blocks, p.Total)
	}
	if opts.Logger != nil {
		opts.Logger.Debug("blockdiff: hashed source", "blocks", p.Blocks, "bytes", p.Bytes, "read", p.Read,
			"elapsed", time.Since(start), "err", err)
	}
	return err
}

// callbackError carries an error returned by the entry callback, which
// HashEntries returns as is.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// shape returns the number of hashing goroutines and blocks per batch.
func (o HashOptions) shape(blocks int64) (conc, batch int, err error) {
	if o.Concurrency < 0 {
		return 0, 0, fmt.Errorf("blockdiff: HashOptions.Concurrency %d is negative; use 0 for GOMAXPROCS", o.Concurrency)
	}
	if o.Buffers < 0 {
		return 0, 0, fmt.Errorf("blockdiff: HashOptions.Buffers %d is negative; use 0 for the default", o.Buffers)
	}
	conc = o.Concurrency
	if conc == 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	batch = max(4, hashing.Lanes())
	if o.Buffers > 0 {
		batch = max(1, o.Buffers/(conc+1))
	}
	// A small volume needs no more than its own blocks.
	if blocks < int64(batch) {
		batch = max(1, int(blocks))
	}
	if per := (blocks + int64(batch) - 1) / int64(batch); per < int64(conc) {
		conc = max(1, int(per))
	}
	return conc, batch, nil
}

// hashJob is a run of blocks: either up to batch blocks to read and hash,
// or a run of holes of any length that is never read. Jobs come from a
// fixed pool and are reused, with their buffers.
type hashJob struct {
	first, count int64
	hole         bool

	bufs    [][]byte   // block buffers, allocated on first use
	kinds   []Kind     // per block
	digests [][32]byte // per block
	data    [][]byte   // the non-zero blocks, for SumBatch
	pos     []int      // their positions in the job
	sums    [][32]byte // SumBatch output
	read    int64      // bytes read
	done    chan struct{}
}

type hasher struct {
	src   Source
	geom  Geometry
	batch int
	conc  int

	free  chan *hashJob // idle jobs
	work  chan *hashJob // jobs to read and hash
	order chan *hashJob // every job, in index order, for the collector
}

// send delivers j on c unless ctx ends first.
func send(ctx context.Context, c chan<- *hashJob, j *hashJob) error {
	select {
	case c <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// produce cuts the volume into jobs in index order: hole runs between the
// source's extents, and batches of blocks inside them.
func (h *hasher) produce(ctx context.Context) error {
	defer close(h.order)
	defer close(h.work)
	n := h.geom.Blocks()
	next := int64(0)
	emit := func(first, end int64, hole bool) error {
		for first < end {
			var j *hashJob
			select {
			case j = <-h.free:
			case <-ctx.Done():
				return ctx.Err()
			}
			c := end - first
			if !hole {
				c = min(c, int64(h.batch))
			}
			j.first, j.count, j.hole = first, c, hole
			if hole {
				j.done <- struct{}{}
			} else if err := send(ctx, h.work, j); err != nil {
				return err
			}
			if err := send(ctx, h.order, j); err != nil {
				return err
			}
			first += c
		}
		return nil
	}
	if x, ok := h.src.(Extenter); ok {
		err := x.Extents(ctx, func(e Extent) error {
			start, end := max(e.First, next), min(e.End(), n)
			if start >= end {
				return nil
			}
			if err := emit(next, start, true); err != nil {
				return err
			}
			next = end
			return emit(start, end, false)
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("blockdiff: list source extents: %w", err)
		}
		return emit(next, n, true)
	}
	return emit(0, n, false)
}

// hashWorker reads and hashes jobs until the work channel closes.
func (h *hasher) hashWorker(ctx context.Context) error {
	for {
		var j *hashJob
		select {
		case j = <-h.work:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j == nil {
			return nil
		}
		if err := h.hashJob(ctx, j); err != nil {
			return err
		}
		j.done <- struct{}{}
	}
}

func (h *hasher) hashJob(ctx context.Context, j *hashJob) error {
	if j.bufs == nil {
		j.bufs = make([][]byte, h.batch)
		for i := range j.bufs {
			j.bufs[i] = make([]byte, h.geom.BlockSize)
		}
		j.kinds = make([]Kind, h.batch)
		j.digests = make([][32]byte, h.batch)
		j.data = make([][]byte, 0, h.batch)
		j.pos = make([]int, 0, h.batch)
		j.sums = make([][32]byte, h.batch)
	}
	j.data, j.pos, j.read = j.data[:0], j.pos[:0], 0
	for k := range int(j.count) {
		i := j.first + int64(k)
		want := h.geom.BlockLen(i)
		n, err := h.src.ReadBlock(ctx, i, j.bufs[k][:want])
		if err == nil && n != want {
			err = fmt.Errorf("short read: got %d bytes, want %d: %w", n, want, io.ErrUnexpectedEOF)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &BlockError{Op: "read", Side: "source", Index: i, Err: err}
		}
		j.read += int64(n)
		b := j.bufs[k][:n]
		if hashing.IsZero(b) {
			j.kinds[k] = Zero
			j.digests[k] = hashing.ZeroDigest(n)
			continue
		}
		j.kinds[k] = Data
		j.data = append(j.data, b)
		j.pos = append(j.pos, k)
	}
	hashing.SumBatch(j.sums, j.data)
	for x, k := range j.pos {
		j.digests[k] = j.sums[x]
	}
	return nil
}

// collect passes the jobs' entries to fn in index order and recycles the
// jobs.
func (h *hasher) collect(ctx context.Context, progress func(HashProgress), fn func(Entry) error) (HashProgress, error) {
	p := HashProgress{Total: h.geom.Blocks()}
	for j := range h.order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return p, ctx.Err()
		}
		for k := range j.count {
			i := j.first + k
			e := Entry{Index: i}
			if j.hole {
				e.Kind, e.Digest = Hole, hashing.ZeroDigest(h.geom.BlockLen(i))
			} else {
				e.Kind, e.Digest = j.kinds[k], j.digests[k]
			}
			if err := fn(e); err != nil {
				return p, callbackError{err}
			}
		}
		p.Blocks += j.count
		p.Bytes = min(h.geom.Offset(p.Blocks), h.geom.Size)
		p.Read += j.read
		j.read = 0
		h.free <- j // never blocks: the pool has room for every job
		if progress != nil {
			progress(p)
		}
	}
	if err := ctx.Err(); err != nil {
		return p, err
	}
	return p, nil
}
