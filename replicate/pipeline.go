package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// op is what a worker does with one task.
type op uint8

const (
	opBlock   op = iota // read count (≤ lanes) source blocks, hash, compare, write if changed
	opRun               // a run of source holes / zero blocks: zero it or skip it (task.zero)
	opGroup             // one distinct content: read once, write to every index
	opHash              // scan: read count (≤ lanes) blocks of the scanned volume and hash them
	opHoleRun           // scan: a run the scanned volume knows to be holes
)

// action is what happened to a block; it decides which counter moves.
type action uint8

const (
	actWritten action = iota
	actZeroed
	actSkipUnchanged
	actSkipZero
	actDedup
	actCopied
	actReferenced
	actHashed
	actSynced // journal only: the sink was synced; the records before it are durable
	actBoot   // journal only: a run started appending, in the boot named by the digest
)

// task is one unit of work, passed by value so that the steady state does
// not allocate.
type task struct {
	op    op
	zero  bool // opRun: zero the run (else skip it)
	kind  blockdiff.Kind
	index int64 // first block
	count int64 // blocks: opRun, opHoleRun; opBlock, opHash at most the pool's lanes
	grp   *groupTask
}

// groupTask is one distinct content of a change set and the indices that
// need it.
type groupTask struct {
	digest  blockdiff.Digest
	length  int
	indices []int64
	local   int64 // unchanged index already holding digest, or -1
}

// result reports one block or run to the collector.
type result struct {
	index, count int64
	kind         blockdiff.Kind
	act          action
	digest       blockdiff.Digest
	read, wrote  int64 // bytes
}

// slab is what one worker holds: up to lanes block buffers, so that the
// blocks of one task are hashed side by side with [hashing.SumBatch], and
// the scratch slices that call needs. Everything is allocated once, with
// the pool.
type slab struct {
	bufs    [][]byte           // lanes buffers of BlockSize bytes
	views   [][]byte           // the task's blocks: bufs cut to their lengths
	kinds   []blockdiff.Kind   // per block of the task: Zero or Data
	digests []blockdiff.Digest // per block of the task
	data    [][]byte           // the non-zero blocks, for SumBatch
	pos     []int              // their positions in the task
	sums    [][hashing.Size]byte

	// For a sink that is a Haser and Referencer: the digests of the task
	// asked about in one HasDigests call, the answers, and per block of
	// the task whether the sink already holds its content.
	ask  []blockdiff.Digest
	has  []bool
	held []bool
}

// hash sets s.kinds and s.digests for the blocks bs (views of s.bufs): a
// zero check first, then one SumBatch over the non-zero blocks. zd gives the
// zero digest of a length.
func (s *slab) hash(bs [][]byte, zd func(int) blockdiff.Digest) {
	s.data, s.pos = s.data[:0], s.pos[:0]
	for k, b := range bs {
		if isZero(b) {
			s.kinds[k], s.digests[k] = blockdiff.Zero, zd(len(b))
			continue
		}
		s.kinds[k] = blockdiff.Data
		s.data = append(s.data, b)
		s.pos = append(s.pos, k)
	}
	switch len(s.data) {
	case 0:
	case 1:
		s.digests[s.pos[0]] = sum256(s.data[0])
	default:
		hashing.SumBatch(s.sums, s.data)
		for x, k := range s.pos {
			s.digests[k] = s.sums[x]
		}
	}
}

// bufPool is a fixed set of slabs; it bounds the bytes in flight to
// slabs × lanes × BlockSize.
type bufPool struct {
	c     chan *slab
	lanes int // buffers per slab: the most blocks one task may cover
}

func newBufPool(n, lanes, size int) *bufPool {
	p := &bufPool{c: make(chan *slab, n), lanes: lanes}
	for range n {
		s := &slab{
			bufs:    make([][]byte, lanes),
			views:   make([][]byte, lanes),
			kinds:   make([]blockdiff.Kind, lanes),
			digests: make([]blockdiff.Digest, lanes),
			data:    make([][]byte, 0, lanes),
			pos:     make([]int, 0, lanes),
			sums:    make([][hashing.Size]byte, lanes),
			ask:     make([]blockdiff.Digest, 0, lanes),
			has:     make([]bool, lanes),
			held:    make([]bool, lanes),
		}
		for k := range s.bufs {
			s.bufs[k] = make([]byte, size)
		}
		p.c <- s
	}
	return p
}

func (p *bufPool) get(ctx context.Context) (*slab, error) {
	select {
	case b := <-p.c:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *bufPool) put(b *slab) { p.c <- b }

// shape returns how many workers a run uses and how many blocks each hashes
// at once (its lanes), so that workers × lanes block buffers fit in
// maxInFlight bytes. Concurrency comes first, as before batching: workers
// is min(concurrency, maxInFlight/blockSize), at least one; each worker then
// gets up to lanes buffers from what the bound leaves, at least one. So the
// blocks in memory never exceed max(1, maxInFlight/blockSize), and a tight
// bound gives up SIMD lanes before it gives up parallel I/O.
func shape(concurrency int, maxInFlight int64, blockSize, lanes int) (workers, perWorker int) {
	slots := max(1, int(min(maxInFlight/int64(blockSize), 1<<30)))
	workers = max(1, min(concurrency, slots))
	perWorker = max(1, min(lanes, slots/workers))
	return workers, perWorker
}

// workFunc handles one task with a pooled slab of buffers and reports
// through send.
type workFunc func(ctx context.Context, s *slab, t task, send func(result) error) error

// pipeline runs produce → workers → collect on one errgroup. produce emits
// tasks; each of workers goroutines holds one pooled slab and runs work;
// collect runs on a single goroutine, so it may touch unsynchronised state.
// The first error wins and cancels the rest; no goroutine outlives the call.
func pipeline(ctx context.Context, workers int, pool *bufPool,
	produce func(ctx context.Context, emit func(task) error) error,
	work workFunc,
	collect func(context.Context, result) error,
) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers + 3)
	tasks := make(chan task, workers)
	results := make(chan result, 2*workers)

	g.Go(func() error {
		defer close(tasks)
		emit := func(t task) error {
			select {
			case tasks <- t:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return produce(ctx, emit)
	})

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		g.Go(func() error {
			defer wg.Done()
			buf, err := pool.get(ctx)
			if err != nil {
				return err
			}
			defer pool.put(buf)
			// send delivers a finished block's result. A result that fits
			// is delivered even after a failure elsewhere cancelled ctx, so
			// that the collector journals every block that was written.
			send := func(r result) error {
				select {
				case results <- r:
					return nil
				default:
				}
				select {
				case results <- r:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case t, ok := <-tasks:
					if !ok {
						return nil
					}
					if err := work(ctx, buf, t, send); err != nil {
						return err
					}
				}
			}
		})
	}
	g.Go(func() error {
		wg.Wait()
		close(results)
		return nil
	})
	// The collector records every result delivered, also after a failure
	// elsewhere cancelled ctx (with a context that is not cancelled, so the
	// journal still takes the record): a block written is a block journaled,
	// and a resumed run does not send it again. Workers stop on
	// cancellation, so results is closed soon after; if collect fails, the
	// cancellation releases any worker waiting to send.
	g.Go(func() error {
		cctx := ctx
		for r := range results {
			if cctx.Err() != nil {
				cctx = context.WithoutCancel(ctx)
			}
			if err := collect(cctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// blockErr wraps err as a *blockdiff.BlockError naming the block and the
// side, unless it already carries one or is a context error.
func blockErr(op, side string, index int64, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var be *blockdiff.BlockError
	if errors.As(err, &be) {
		return fmt.Errorf("replicate: %w", err)
	}
	return fmt.Errorf("replicate: %w", &blockdiff.BlockError{Op: op, Side: side, Index: index, Err: err})
}

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool { return hashing.IsZero(b) }

// sum256 returns the digest of b.
func sum256(b []byte) blockdiff.Digest { return hashing.Sum256(b) }

// zeroDigest returns the digest of n zero bytes.
func zeroDigest(n int) blockdiff.Digest { return hashing.ZeroDigest(n) }

// progress accumulates counters for events; it is used by the collector
// goroutine only.
type progress struct {
	fn       func(Event)
	interval time.Duration
	ev       Event
	start    time.Time
	last     time.Time
}

func (p *progress) begin(plan PlanKind, phase string, blocks, bytes int64) {
	p.ev = Event{Plan: plan, Phase: phase, PlannedBlocks: blocks, PlannedBytes: bytes}
	p.start = time.Now()
	p.last = p.start
}

func (p *progress) add(r *result, blockBytes int64) {
	if p.fn == nil {
		return
	}
	e := &p.ev
	e.DoneBlocks += r.count
	e.DoneBytes += blockBytes
	if r.read > 0 {
		e.ReadBlocks++
		e.ReadBytes += r.read
	}
	switch r.act {
	case actWritten, actZeroed, actCopied, actReferenced:
		e.WrittenBlocks += r.count
	case actDedup:
		e.DedupedBlocks += r.count
		e.DedupedBytes += blockBytes
		e.WrittenBlocks += r.count
	case actSkipUnchanged, actSkipZero:
		e.SkippedBlocks += r.count
		e.SkippedBytes += blockBytes
	}
	e.WrittenBytes += r.wrote
	now := time.Now()
	if now.Sub(p.last) >= p.interval {
		p.last = now
		p.emit(now, false)
	}
}

func (p *progress) end() {
	if p.fn == nil {
		return
	}
	p.emit(time.Now(), true)
}

func (p *progress) emit(now time.Time, final bool) {
	e := p.ev
	e.Elapsed = now.Sub(p.start)
	if s := e.Elapsed.Seconds(); s > 0 {
		e.Rate = float64(e.DoneBytes) / s
		if left := e.PlannedBytes - e.DoneBytes; left > 0 && e.Rate > 0 {
			e.ETA = time.Duration(float64(left) / e.Rate * float64(time.Second))
		}
	}
	e.Final = final
	p.fn(e)
}

// bitset is a fixed-size set of block indices.
type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int64) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }

func (b bitset) set(i int64) { b[i>>6] |= 1 << (uint(i) & 63) }

func (b bitset) setRange(first, count int64) {
	for i := first; i < first+count; i++ {
		b.set(i)
	}
}
