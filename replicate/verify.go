package replicate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// DefaultMaxMismatches is how many mismatched blocks a [VerifyResult]
// lists by default.
const DefaultMaxMismatches = 100

// VerifyOptions configure [Verify]. The zero value works.
type VerifyOptions struct {
	// Concurrency is the number of blocks read at once. Default
	// runtime.GOMAXPROCS(0).
	Concurrency int
	// MaxInFlight bounds the block bytes held in memory, in bytes.
	// Default [DefaultMaxInFlight].
	MaxInFlight int64
	// MaxMismatches bounds VerifyResult.Mismatches (the count is always
	// exact). Default [DefaultMaxMismatches].
	MaxMismatches int
	// Progress and ProgressInterval are as in [Options]; the phase is
	// "verify".
	Progress         func(Event)
	ProgressInterval time.Duration
}

// Mismatch is one block whose content differs from the manifest.
type Mismatch struct {
	Index int64           `json:"index"`
	Want  blockdiff.Entry `json:"want"`
	Got   blockdiff.Entry `json:"got"`
}

// VerifyResult is what [Verify] found.
type VerifyResult struct {
	Checked    int64         `json:"checked_blocks"`
	Mismatched int64         `json:"mismatched_blocks"`
	Mismatches []Mismatch    `json:"mismatches"` // the lowest indices found, at most MaxMismatches, ascending
	BytesRead  int64         `json:"bytes_read"`
	Duration   time.Duration `json:"duration_ns"`
}

// Verify re-hashes every block of src (its holes are not read) and
// compares it with m, where Zero and Hole count as the same content. It
// returns the result and, when any block differs, an error wrapping a
// *blockdiff.BlockError (Op "verify", Side "target") for the lowest
// mismatched index and [blockdiff.ErrChecksum].
func Verify(ctx context.Context, src blockdiff.Source, m *blockdiff.Manifest, opts VerifyOptions) (*VerifyResult, error) {
	if src == nil || m == nil {
		return nil, errors.New("replicate: verify: source and manifest must not be nil")
	}
	if g := src.Geometry(); g != m.Geometry() {
		return nil, fmt.Errorf("replicate: verify: volume geometry %v differs from manifest %v: %w", g, m.Geometry(), blockdiff.ErrGeometry)
	}
	if opts.Concurrency < 0 || opts.MaxInFlight < 0 || opts.MaxMismatches < 0 || opts.ProgressInterval < 0 {
		return nil, errors.New("replicate: verify: Concurrency, MaxInFlight, MaxMismatches and ProgressInterval must not be negative")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxMismatches == 0 {
		opts.MaxMismatches = DefaultMaxMismatches
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	g := m.Geometry()
	workers, lanes := shape(opts.Concurrency, opts.MaxInFlight, g.BlockSize, hashing.Lanes())
	prog := &progress{fn: opts.Progress, interval: opts.ProgressInterval}
	prog.begin("", "verify", g.Blocks(), g.Size)
	return verify(ctx, workers, newBufPool(workers, lanes, g.BlockSize), src, m, nil, opts.MaxMismatches, prog)
}

// verify compares the blocks of v selected by sel (all when nil) with m.
func verify(ctx context.Context, workers int, pool *bufPool, v blockdiff.Source, m *blockdiff.Manifest, sel bitset,
	maxList int, prog *progress) (*VerifyResult, error) {
	start := time.Now()
	res := &VerifyResult{}
	err := scan(ctx, workers, pool, v, "target", sel, prog, func(r result) error {
		res.BytesRead += r.read
		for i := r.index; i < r.index+r.count; i++ {
			res.Checked++
			want := m.Entry(i)
			if want.Digest == r.digest || (want.Kind.IsZero() && r.kind.IsZero()) {
				continue
			}
			res.Mismatched++
			mm := Mismatch{Index: i, Want: want, Got: blockdiff.Entry{Index: i, Kind: r.kind, Digest: r.digest}}
			// Keep the lowest indices: results arrive out of order.
			if len(res.Mismatches) < maxList {
				res.Mismatches = append(res.Mismatches, mm)
				continue
			}
			hi := 0
			for k := range res.Mismatches {
				if res.Mismatches[k].Index > res.Mismatches[hi].Index {
					hi = k
				}
			}
			if i < res.Mismatches[hi].Index {
				res.Mismatches[hi] = mm
			}
		}
		return nil
	})
	prog.end()
	res.Duration = time.Since(start)
	slices.SortFunc(res.Mismatches, func(a, b Mismatch) int {
		switch {
		case a.Index < b.Index:
			return -1
		case a.Index > b.Index:
			return 1
		}
		return 0
	})
	if err != nil {
		return res, fmt.Errorf("replicate: verify: %w", err)
	}
	if res.Mismatched > 0 {
		first := res.Mismatches[0]
		return res, fmt.Errorf("replicate: verify: %d of %d blocks differ from the manifest: %w", res.Mismatched, res.Checked,
			&blockdiff.BlockError{Op: "verify", Side: "target", Index: first.Index,
				Err: fmt.Errorf("holds %s %s, manifest says %s %s: %w", first.Got.Kind, first.Got.Digest, first.Want.Kind, first.Want.Digest, blockdiff.ErrChecksum)})
	}
	return res, nil
}

// verifyPhase reads back what Options.Verify asks for, before Commit.
func (e *engine) verifyPhase(ctx context.Context) error {
	if e.opts.Verify == VerifyNone {
		return nil
	}
	v := e.dst.(blockdiff.Source) // checked in newEngine
	var sel bitset
	planned := e.geom.Blocks()
	if e.opts.Verify == VerifyWritten {
		sel = e.written
		planned = 0
		for _, w := range sel {
			for ; w != 0; w &= w - 1 {
				planned++
			}
		}
	}
	e.prog.begin(e.plan, "verify", planned, planned*int64(e.geom.BlockSize))
	res, err := verify(ctx, e.workers, e.pool, v, e.out, sel, DefaultMaxMismatches, &e.prog)
	if res != nil {
		e.stats.Verified = res.Checked - res.Mismatched
		e.stats.BytesRead += res.BytesRead
	}
	return err
}
