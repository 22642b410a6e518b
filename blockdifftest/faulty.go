package blockdifftest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// ErrInjected is wrapped by every error a fault wrapper injects, beside the
// error given to FailCall (and friends) or, for a torn write,
// [io.ErrShortWrite]; errors from the wrapped adapter pass through unmarked.
var ErrInjected = errors.New("injected fault")

type faultKind uint8

const (
	faultErr faultKind = iota + 1
	faultShort
	faultCorrupt
)

// rule selects calls: call n only (from == false), calls n and later (from),
// or any call to one block index (index >= 0).
type rule struct {
	call  int64
	from  bool
	index int64
	kind  faultKind
	err   error
}

func (r rule) matches(call, index int64) bool {
	switch {
	case r.index >= 0:
		return index == r.index
	case r.from:
		return call >= r.call
	}
	return call == r.call
}

// faults is the rule set shared by both wrappers.
type faults struct {
	mu    sync.Mutex
	calls int64
	rules []rule
	delay time.Duration
}

func (f *faults) add(r rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

// next counts a call and returns the first matching rule, if any, and the
// delay to apply.
func (f *faults) next(index int64) (rule, bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for _, r := range f.rules {
		if r.matches(f.calls, index) {
			return r, true, f.delay
		}
	}
	return rule{}, false, f.delay
}

func (f *faults) count() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FaultySource wraps a [blockdiff.Source] and injects faults into ReadBlock:
// errors, short reads, corrupted bytes and delays, chosen by call number
// (1-based, counting every ReadBlock call on the wrapper) or by block index.
// The first matching fault applies; calls no fault matches pass through.
//
// It implements [blockdiff.Extenter] always: it passes through to the
// wrapped source's Extents, or reports one run covering the whole volume
// when the wrapped source has none, which says the same thing. Manifester
// and ChangeLister are hidden on purpose, so the engine reads (through the
// faults) instead of trusting known digests.
//
// Configure it before use; it is safe for concurrent use afterwards (and
// configuration is locked, so adding faults mid-run is safe too).
type FaultySource struct {
	src blockdiff.Source
	f   faults
}

var (
	_ blockdiff.Source   = (*FaultySource)(nil)
	_ blockdiff.Extenter = (*FaultySource)(nil)
)

// NewFaultySource returns a wrapper of src with no faults.
func NewFaultySource(src blockdiff.Source) *FaultySource { return &FaultySource{src: src} }

// FailCall makes the n-th ReadBlock call return err (for example
// syscall.EIO) without reading. It returns s for chaining.
func (s *FaultySource) FailCall(n int64, err error) *FaultySource {
	s.f.add(rule{call: n, index: -1, kind: faultErr, err: err})
	return s
}

// FailFrom makes the n-th and every later ReadBlock call return err: a disk
// that died.
func (s *FaultySource) FailFrom(n int64, err error) *FaultySource {
	s.f.add(rule{call: n, from: true, index: -1, kind: faultErr, err: err})
	return s
}

// FailIndex makes every read of block index return err: a bad sector.
func (s *FaultySource) FailIndex(index int64, err error) *FaultySource {
	s.f.add(rule{index: index, kind: faultErr, err: err})
	return s
}

// ShortCall makes the n-th ReadBlock call return one byte fewer than the
// block's length with a nil error, which breaks the Source contract; a
// careful caller detects it.
func (s *FaultySource) ShortCall(n int64) *FaultySource {
	s.f.add(rule{call: n, index: -1, kind: faultShort})
	return s
}

// CorruptCall makes the n-th ReadBlock call return the block with its
// middle byte flipped and a nil error: silent corruption that only a
// digest check catches.
func (s *FaultySource) CorruptCall(n int64) *FaultySource {
	s.f.add(rule{call: n, index: -1, kind: faultCorrupt})
	return s
}

// CorruptIndex makes every read of block index return flipped bytes.
func (s *FaultySource) CorruptIndex(index int64) *FaultySource {
	s.f.add(rule{index: index, kind: faultCorrupt})
	return s
}

// SetDelay makes every ReadBlock call sleep d first (returning early with
// the context's error if ctx is done): a slow disk or network.
func (s *FaultySource) SetDelay(d time.Duration) *FaultySource {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.delay = d
	return s
}

// Calls returns how many ReadBlock calls the wrapper has seen.
func (s *FaultySource) Calls() int64 { return s.f.count() }

// Unwrap returns the wrapped source.
func (s *FaultySource) Unwrap() blockdiff.Source { return s.src }

// Geometry returns the wrapped source's geometry.
func (s *FaultySource) Geometry() blockdiff.Geometry { return s.src.Geometry() }

// ReadBlock reads from the wrapped source, applying the first matching
// fault. Injected errors are wrapped in a [blockdiff.BlockError].
func (s *FaultySource) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	r, ok, delay := s.f.next(index)
	if err := sleep(ctx, delay); err != nil {
		return 0, err
	}
	if ok && r.kind == faultErr {
		return 0, &blockdiff.BlockError{Op: "read", Side: "source", Index: index,
			Err: fmt.Errorf("blockdifftest: %w: %w", ErrInjected, r.err)}
	}
	n, err := s.src.ReadBlock(ctx, index, buf)
	if err != nil || !ok || n == 0 {
		return n, err
	}
	switch r.kind {
	case faultShort:
		return n - 1, nil
	case faultCorrupt:
		buf[n/2] ^= 0xFF
	}
	return n, nil
}

// Extents passes through to the wrapped source's, or reports one run
// covering the volume. See [blockdiff.Extenter].
func (s *FaultySource) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	if x, ok := s.src.(blockdiff.Extenter); ok {
		return x.Extents(ctx, fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := s.src.Geometry().Blocks(); n > 0 {
		return fn(blockdiff.Extent{First: 0, Count: n})
	}
	return nil
}

// FaultySink wraps a [blockdiff.Sink] and injects faults into WriteBlock
// (errors such as syscall.ENOSPC, torn short writes, delays) and Commit,
// chosen by call number (1-based, counting every WriteBlock call on the
// wrapper) or by block index. The first matching fault applies.
//
// It implements [blockdiff.Zeroer], [blockdiff.Copier] and
// [blockdiff.Source] always, passing through to the wrapped sink's:
// ZeroBlocks falls back to writing zero blocks with the wrapped WriteBlock;
// CopyBlock falls back to reading (when the wrapped sink is a Source) and
// writing; ReadBlock, and CopyBlock without a readable sink, fail with an
// error wrapping [errors.ErrUnsupported]. Wrap sink.Memory or
// sink.File, which have all three. Haser and Referencer are not passed
// through. Faults apply to WriteBlock only, not to ZeroBlocks or CopyBlock.
//
// It is safe for concurrent use.
type FaultySink struct {
	snk       blockdiff.Sink
	f         faults
	commitErr error
}

var (
	_ blockdiff.Sink   = (*FaultySink)(nil)
	_ blockdiff.Zeroer = (*FaultySink)(nil)
	_ blockdiff.Copier = (*FaultySink)(nil)
	_ blockdiff.Source = (*FaultySink)(nil)
)

// NewFaultySink returns a wrapper of snk with no faults.
func NewFaultySink(snk blockdiff.Sink) *FaultySink { return &FaultySink{snk: snk} }

// FailCall makes the n-th WriteBlock call return err without writing.
func (s *FaultySink) FailCall(n int64, err error) *FaultySink {
	s.f.add(rule{call: n, index: -1, kind: faultErr, err: err})
	return s
}

// FailFrom makes the n-th and every later WriteBlock call return err
// without writing: a full disk.
func (s *FaultySink) FailFrom(n int64, err error) *FaultySink {
	s.f.add(rule{call: n, from: true, index: -1, kind: faultErr, err: err})
	return s
}

// FailIndex makes every write of block index return err without writing.
func (s *FaultySink) FailIndex(index int64, err error) *FaultySink {
	s.f.add(rule{index: index, kind: faultErr, err: err})
	return s
}

// ShortCall makes the n-th WriteBlock call a torn write: the first half of
// the block is written, the rest as zeros, and the call returns an error
// wrapping [io.ErrShortWrite] and [ErrInjected].
func (s *FaultySink) ShortCall(n int64) *FaultySink {
	s.f.add(rule{call: n, index: -1, kind: faultShort})
	return s
}

// FailCommit makes Commit return err without committing.
func (s *FaultySink) FailCommit(err error) *FaultySink {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.commitErr = err
	return s
}

// SetDelay makes every WriteBlock call sleep d first (returning early with
// the context's error if ctx is done).
func (s *FaultySink) SetDelay(d time.Duration) *FaultySink {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.delay = d
	return s
}

// Calls returns how many WriteBlock calls the wrapper has seen.
func (s *FaultySink) Calls() int64 { return s.f.count() }

// Unwrap returns the wrapped sink.
func (s *FaultySink) Unwrap() blockdiff.Sink { return s.snk }

// Geometry returns the wrapped sink's geometry.
func (s *FaultySink) Geometry() blockdiff.Geometry { return s.snk.Geometry() }

// WriteBlock writes through to the wrapped sink, applying the first
// matching fault. Injected errors are wrapped in a [blockdiff.BlockError].
func (s *FaultySink) WriteBlock(ctx context.Context, index int64, data []byte, d blockdiff.Digest) error {
	r, ok, delay := s.f.next(index)
	if err := sleep(ctx, delay); err != nil {
		return err
	}
	if !ok {
		return s.snk.WriteBlock(ctx, index, data, d)
	}
	switch r.kind {
	case faultErr:
		return &blockdiff.BlockError{Op: "write", Side: "sink", Index: index,
			Err: fmt.Errorf("blockdifftest: %w: %w", ErrInjected, r.err)}
	case faultShort:
		torn := make([]byte, len(data))
		copy(torn, data[:len(data)/2])
		if err := s.snk.WriteBlock(ctx, index, torn, sha256.Sum256(torn)); err != nil {
			return err
		}
		return &blockdiff.BlockError{Op: "write", Side: "sink", Index: index,
			Err: fmt.Errorf("blockdifftest: %w: wrote %d of %d bytes: %w", ErrInjected, len(data)/2, len(data), io.ErrShortWrite)}
	}
	return s.snk.WriteBlock(ctx, index, data, d)
}

// Commit commits the wrapped sink unless FailCommit was set.
func (s *FaultySink) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	s.f.mu.Lock()
	err := s.commitErr
	s.f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("blockdifftest: commit: %w: %w", ErrInjected, err)
	}
	return s.snk.Commit(ctx, m)
}

// Close closes the wrapped sink.
func (s *FaultySink) Close() error { return s.snk.Close() }

// ZeroBlocks passes through, or writes zero blocks. See [FaultySink].
func (s *FaultySink) ZeroBlocks(ctx context.Context, e blockdiff.Extent) error {
	if z, ok := s.snk.(blockdiff.Zeroer); ok {
		return z.ZeroBlocks(ctx, e)
	}
	g := s.snk.Geometry()
	if e.First < 0 || e.Count < 0 || e.End() > g.Blocks() {
		return fmt.Errorf("blockdifftest: zero blocks %d+%d of %d: %w", e.First, e.Count, g.Blocks(), blockdiff.ErrOutOfRange)
	}
	zero := make([]byte, g.BlockSize)
	for i := e.First; i < e.End(); i++ {
		b := zero[:g.BlockLen(i)]
		if err := s.snk.WriteBlock(ctx, i, b, sha256.Sum256(b)); err != nil {
			return err
		}
	}
	return nil
}

// CopyBlock passes through, or reads and writes. See [FaultySink].
func (s *FaultySink) CopyBlock(ctx context.Context, dst, src int64) error {
	if c, ok := s.snk.(blockdiff.Copier); ok {
		return c.CopyBlock(ctx, dst, src)
	}
	r, ok := s.snk.(blockdiff.Source)
	if !ok {
		return fmt.Errorf("blockdifftest: copy block %d to %d: wrapped sink %T can neither copy nor read: %w", src, dst, s.snk, errors.ErrUnsupported)
	}
	g := s.snk.Geometry()
	if g.BlockLen(dst) != g.BlockLen(src) || g.BlockLen(dst) == 0 {
		return fmt.Errorf("blockdifftest: copy block %d to %d of %d: %w", src, dst, g.Blocks(), blockdiff.ErrOutOfRange)
	}
	buf := make([]byte, g.BlockSize)
	n, err := r.ReadBlock(ctx, src, buf)
	if err != nil {
		return err
	}
	return s.snk.WriteBlock(ctx, dst, buf[:n], sha256.Sum256(buf[:n]))
}

// ReadBlock passes through when the wrapped sink is a Source. See
// [FaultySink].
func (s *FaultySink) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	r, ok := s.snk.(blockdiff.Source)
	if !ok {
		return 0, fmt.Errorf("blockdifftest: read block %d: wrapped sink %T is not readable: %w", index, s.snk, errors.ErrUnsupported)
	}
	return r.ReadBlock(ctx, index, buf)
}
