package ebs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// BlockSize is the block size of the EBS direct APIs: 512 KiB.
const BlockSize = 512 << 10

// GiB is the unit of an EBS VolumeSize.
const GiB = 1 << 30

// blocksPerGiB is the number of EBS blocks in one GiB.
const blocksPerGiB = GiB / BlockSize

// Defaults of [SourceOptions] and [SinkOptions].
const (
	DefaultPageSize       = 10000
	DefaultTokenWindows   = 16
	DefaultTokenRenewals  = 3
	DefaultRequestTimeout = 10 * time.Minute
)

// SourceOptions configure [OpenSnapshot]. The zero value works.
type SourceOptions struct {
	// Size is the logical volume size in bytes (for a snapshot made from a
	// file whose size is not a whole number of GiB). Default: the
	// snapshot's VolumeSize GiB. It must not exceed that.
	Size int64
	// BlockSize is the block size the Source presents, a power of two
	// from [blockdiff.MinBlockSize] to [BlockSize]. Default [BlockSize]
	// (512 KiB). A smaller size fetches the whole 512 KiB block for each
	// read and keeps one part: use it only to match another volume's block
	// size.
	BlockSize int
	// PageSize is MaxResults of the List calls, 100 to 10000. Default
	// [DefaultPageSize]. Block tokens are fetched lazily per window of
	// PageSize blocks.
	PageSize int
	// TokenWindows is how many windows of block tokens are kept in memory
	// (least recently used go first). Default [DefaultTokenWindows] (16,
	// at most about 16 MiB of tokens).
	TokenWindows int
	// TokenRenewals bounds how often one read lists again after an
	// INVALID_BLOCK_TOKEN (expired or superseded token). Default
	// [DefaultTokenRenewals] (3).
	TokenRenewals int
	// RequestTimeout bounds one API operation, retries included. Default
	// [DefaultRequestTimeout] (10 min).
	RequestTimeout time.Duration
	// Logger receives debug records (token renewals). Default: none.
	Logger *slog.Logger
}

// Source is a completed EBS snapshot read through the EBS direct APIs. It
// implements [blockdiff.Source], [blockdiff.Extenter] (the listed blocks)
// and [blockdiff.ChangeLister] (ListChangedBlocks). Blocks the snapshot
// does not list are holes and read as zeros without a request.
type Source struct {
	api       EBSAPI
	id        string
	geom      blockdiff.Geometry
	volBlocks int64 // EBS blocks of the snapshot (VolumeSize GiB)
	opts      SourceOptions
	log       *slog.Logger
	bufs      sync.Pool // *[BlockSize]byte, for partial reads

	mu      sync.Mutex
	windows map[int64]*window
	clock   uint64 // LRU stamp
	recent  [recentBlocks]recentBlock
}

// recentBlocks is how many verified EBS blocks a Source with a BlockSize
// below 512 KiB keeps, so that reading the parts of one EBS block in turn
// fetches it once.
const recentBlocks = 4

type recentBlock struct {
	index int64 // EBS block index; -1 for none
	data  *[BlockSize]byte
	used  uint64
}

// window holds the block tokens of EBS blocks [w*PageSize, (w+1)*PageSize).
type window struct {
	ready  chan struct{}
	tokens map[int32]string // listed blocks only
	err    error
	used   uint64
}

var (
	_ blockdiff.Source       = (*Source)(nil)
	_ blockdiff.Extenter     = (*Source)(nil)
	_ blockdiff.ChangeLister = (*Source)(nil)
)

// OpenSnapshot opens completed snapshot snapshotID for reading. It makes
// one ListSnapshotBlocks call to learn the volume size and to check that
// the snapshot exists and is readable; an unknown snapshot gives an error
// wrapping [blockdiff.ErrNotFound].
func OpenSnapshot(ctx context.Context, api EBSAPI, snapshotID string, opts SourceOptions) (*Source, error) {
	if api == nil {
		return nil, errors.New("ebs: open snapshot: nil EBS client")
	}
	if !strings.HasPrefix(snapshotID, "snap-") {
		return nil, fmt.Errorf("ebs: open snapshot %q: want an id of the form snap-0123456789abcdef0", snapshotID)
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = BlockSize
	}
	if err := blockdiff.ValidateBlockSize(opts.BlockSize); err != nil || opts.BlockSize > BlockSize {
		return nil, fmt.Errorf("ebs: open snapshot %s: block size %d must be a power of two from %d to %d: %w",
			snapshotID, opts.BlockSize, blockdiff.MinBlockSize, BlockSize, blockdiff.ErrGeometry)
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.PageSize < 100 || opts.PageSize > 10000 {
		return nil, fmt.Errorf("ebs: open snapshot %s: page size %d must be 100 to 10000", snapshotID, opts.PageSize)
	}
	if opts.TokenWindows == 0 {
		opts.TokenWindows = DefaultTokenWindows
	}
	if opts.TokenRenewals == 0 {
		opts.TokenRenewals = DefaultTokenRenewals
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.TokenWindows < 0 || opts.TokenRenewals < 0 || opts.RequestTimeout < 0 || opts.Size < 0 {
		return nil, fmt.Errorf("ebs: open snapshot %s: Size, TokenWindows, TokenRenewals and RequestTimeout must not be negative", snapshotID)
	}
	s := &Source{api: api, id: snapshotID, opts: opts, log: opts.Logger, windows: map[int64]*window{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.bufs.New = func() any { return new([BlockSize]byte) }

	cctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
	defer cancel()
	out, err := api.ListSnapshotBlocks(cctx, &awsebs.ListSnapshotBlocksInput{SnapshotId: aws.String(snapshotID), MaxResults: aws.Int32(100)})
	if err != nil {
		return nil, mapErr("ListSnapshotBlocks", snapshotID, err)
	}
	if bs := aws.ToInt32(out.BlockSize); bs != 0 && bs != BlockSize {
		return nil, fmt.Errorf("ebs: open snapshot %s: block size %d, want %d: %w", snapshotID, bs, BlockSize, blockdiff.ErrGeometry)
	}
	vs := aws.ToInt64(out.VolumeSize)
	if vs < 1 {
		return nil, fmt.Errorf("ebs: open snapshot %s: volume size %d GiB reported: %w", snapshotID, vs, blockdiff.ErrGeometry)
	}
	s.volBlocks = vs * blocksPerGiB
	size := vs * GiB
	if opts.Size > size {
		return nil, fmt.Errorf("ebs: open snapshot %s: size %d is larger than the snapshot's %d GiB: %w", snapshotID, opts.Size, vs, blockdiff.ErrGeometry)
	}
	if opts.Size > 0 {
		size = opts.Size
	}
	s.geom = blockdiff.Geometry{Size: size, BlockSize: opts.BlockSize}
	return s, nil
}

// Geometry returns the volume's geometry.
func (s *Source) Geometry() blockdiff.Geometry { return s.geom }

// ID returns "ebs:" followed by the snapshot id.
func (s *Source) ID() string { return "ebs:" + s.id }

// SnapshotID returns the snapshot id.
func (s *Source) SnapshotID() string { return s.id }

// ratio is the number of Source blocks per EBS block.
func (s *Source) ratio() int64 { return BlockSize / int64(s.geom.BlockSize) }

// ReadBlock reads block index into buf, fetching it with GetSnapshotBlock
// and verifying its SHA-256 against x-amz-Checksum (a mismatch wraps
// [blockdiff.ErrChecksum]). A block the snapshot does not list reads as
// zeros without a request.
func (s *Source) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	n := s.geom.BlockLen(index)
	if n == 0 {
		return 0, fmt.Errorf("ebs: read snapshot %s block %d of %d: %w", s.id, index, s.geom.Blocks(), blockdiff.ErrOutOfRange)
	}
	if len(buf) < n {
		return 0, fmt.Errorf("ebs: read snapshot %s block %d: buffer of %d bytes, need %d", s.id, index, len(buf), n)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := s.ratio()
	ei := index / r
	off := int((index % r) * int64(s.geom.BlockSize))
	if n == BlockSize {
		if err := s.readEBS(ctx, ei, buf[:BlockSize]); err != nil {
			return 0, err
		}
		return n, nil
	}
	if s.fromRecent(ei, off, buf[:n]) {
		return n, nil
	}
	b := s.bufs.Get().(*[BlockSize]byte)
	if err := s.readEBS(ctx, ei, b[:]); err != nil {
		s.bufs.Put(b)
		return 0, err
	}
	copy(buf[:n], b[off:off+n])
	s.keepRecent(ei, b)
	return n, nil
}

// fromRecent copies part of a recently read EBS block ei into dst.
func (s *Source) fromRecent(ei int64, off int, dst []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.recent {
		if r := &s.recent[k]; r.data != nil && r.index == ei {
			s.clock++
			r.used = s.clock
			copy(dst, r.data[off:])
			return true
		}
	}
	return false
}

// keepRecent keeps EBS block ei's data b, replacing the least recently
// used entry (whose buffer goes back to the pool).
func (s *Source) keepRecent(ei int64, b *[BlockSize]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := 0
	for j := range s.recent {
		if r := &s.recent[j]; r.data != nil && r.index == ei {
			s.bufs.Put(b) // another reader kept it meanwhile
			return
		}
		if s.recent[j].data == nil || s.recent[j].used < s.recent[k].used {
			k = j
		}
		if s.recent[k].data == nil {
			break
		}
	}
	if old := s.recent[k].data; old != nil {
		s.bufs.Put(old)
	}
	s.clock++
	s.recent[k] = recentBlock{index: ei, data: b, used: s.clock}
}

// readEBS reads EBS block ei into dst (BlockSize bytes).
func (s *Source) readEBS(ctx context.Context, ei int64, dst []byte) error {
	for attempt := 0; ; attempt++ {
		w, err := s.window(ctx, ei)
		if err != nil {
			return err
		}
		tok, ok := w.tokens[int32(ei)]
		if !ok {
			clear(dst)
			return nil
		}
		err = s.get(ctx, ei, tok, dst)
		if err == nil || !isBlockTokenError(err) || attempt >= s.opts.TokenRenewals {
			if err != nil && isBlockTokenError(err) {
				return fmt.Errorf("ebs: read snapshot %s block %d: block token still refused after %d renewals: %w", s.id, ei, attempt, err)
			}
			return err
		}
		s.log.Debug("ebs: block token refused, listing again", "snapshot", s.id, "block", ei, "attempt", attempt+1)
		s.drop(ei, w)
	}
}

// get fetches EBS block ei with token tok into dst and verifies it.
func (s *Source) get(ctx context.Context, ei int64, tok string, dst []byte) error {
	cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	out, err := s.api.GetSnapshotBlock(cctx, &awsebs.GetSnapshotBlockInput{
		SnapshotId: aws.String(s.id), BlockIndex: aws.Int32(int32(ei)), BlockToken: aws.String(tok),
	})
	if err != nil {
		if isBlockTokenError(err) {
			return err
		}
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei, Err: mapErr("GetSnapshotBlock", s.id, err)}
	}
	defer out.BlockData.Close()
	if dl := aws.ToInt32(out.DataLength); dl != BlockSize {
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei,
			Err: fmt.Errorf("ebs: GetSnapshotBlock %s block %d: data length %d, want %d: %w", s.id, ei, dl, BlockSize, blockdiff.ErrCorrupt)}
	}
	if _, err := io.ReadFull(out.BlockData, dst[:BlockSize]); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei,
			Err: fmt.Errorf("ebs: GetSnapshotBlock %s block %d: read body: %w", s.id, ei, err)}
	}
	var extra [1]byte
	if k, _ := out.BlockData.Read(extra[:]); k != 0 {
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei,
			Err: fmt.Errorf("ebs: GetSnapshotBlock %s block %d: body longer than %d bytes: %w", s.id, ei, BlockSize, blockdiff.ErrCorrupt)}
	}
	want, err := base64.StdEncoding.DecodeString(aws.ToString(out.Checksum))
	if err != nil || len(want) != sha256.Size {
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei,
			Err: fmt.Errorf("ebs: GetSnapshotBlock %s block %d: checksum header %q is not a base64 SHA-256: %w", s.id, ei, aws.ToString(out.Checksum), blockdiff.ErrChecksum)}
	}
	if got := hashing.Sum256(dst[:BlockSize]); !bytes.Equal(got[:], want) {
		return &blockdiff.BlockError{Op: "read", Side: "source", Index: ei,
			Err: fmt.Errorf("ebs: GetSnapshotBlock %s block %d: body SHA-256 %s, x-amz-Checksum %s; read it again: %w",
				s.id, ei, base64.StdEncoding.EncodeToString(got[:]), aws.ToString(out.Checksum), blockdiff.ErrChecksum)}
	}
	return nil
}

// window returns the (loaded) token window holding EBS block ei, listing
// it if needed. Concurrent callers for one window share one listing.
func (s *Source) window(ctx context.Context, ei int64) (*window, error) {
	wi := ei / int64(s.opts.PageSize)
	s.mu.Lock()
	s.clock++
	w := s.windows[wi]
	if w != nil {
		w.used = s.clock
		s.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if w.err != nil {
			return nil, w.err
		}
		return w, nil
	}
	w = &window{ready: make(chan struct{}), used: s.clock}
	s.windows[wi] = w
	s.evictLocked()
	s.mu.Unlock()

	w.tokens, w.err = s.listWindow(ctx, wi)
	close(w.ready)
	if w.err != nil {
		s.drop(ei, w) // do not cache failures
		return nil, w.err
	}
	return w, nil
}

// evictLocked drops the least recently used loaded windows beyond
// TokenWindows.
func (s *Source) evictLocked() {
	for len(s.windows) > s.opts.TokenWindows {
		var old int64 = -1
		var oldest uint64
		for k, w := range s.windows {
			select {
			case <-w.ready:
			default:
				continue // loading
			}
			if old < 0 || w.used < oldest {
				old, oldest = k, w.used
			}
		}
		if old < 0 {
			return
		}
		delete(s.windows, old)
	}
}

// drop forgets window w (holding EBS block ei) if it is still cached.
func (s *Source) drop(ei int64, w *window) {
	wi := ei / int64(s.opts.PageSize)
	s.mu.Lock()
	if s.windows[wi] == w {
		delete(s.windows, wi)
	}
	s.mu.Unlock()
}

// listWindow lists the tokens of EBS blocks in window wi.
func (s *Source) listWindow(ctx context.Context, wi int64) (map[int32]string, error) {
	first := wi * int64(s.opts.PageSize)
	end := min(first+int64(s.opts.PageSize), s.volBlocks)
	toks := make(map[int32]string)
	err := s.list(ctx, first, func(idx int32, tok string) bool {
		if int64(idx) >= end {
			return false
		}
		toks[idx] = tok
		return true
	})
	return toks, err
}

// list calls fn for each listed block from EBS index first on, until fn
// returns false or the list ends.
func (s *Source) list(ctx context.Context, first int64, fn func(int32, string) bool) error {
	p := awsebs.NewListSnapshotBlocksPaginator(s.api, &awsebs.ListSnapshotBlocksInput{
		SnapshotId: aws.String(s.id), StartingBlockIndex: aws.Int32(int32(first)),
	}, func(o *awsebs.ListSnapshotBlocksPaginatorOptions) { o.Limit = int32(s.opts.PageSize) })
	for p.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		out, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return mapErr("ListSnapshotBlocks", s.id, err)
		}
		for _, b := range out.Blocks {
			if !fn(aws.ToInt32(b.BlockIndex), aws.ToString(b.BlockToken)) {
				return nil
			}
		}
	}
	return nil
}

// Extents calls fn with the runs of blocks the snapshot lists (inherited
// ones included); every other block is a hole.
func (s *Source) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	var cur blockdiff.Extent
	var ferr error
	n, r := s.geom.Blocks(), s.ratio()
	flush := func() bool {
		if cur.Count > 0 {
			ferr = fn(cur)
		}
		cur = blockdiff.Extent{}
		return ferr == nil
	}
	err := s.list(ctx, 0, func(idx int32, _ string) bool {
		first := int64(idx) * r
		if first >= n {
			return false
		}
		cnt := min(r, n-first)
		if cur.Count > 0 && cur.End() == first {
			cur.Count += cnt
			return true
		}
		if !flush() {
			return false
		}
		cur = blockdiff.Extent{First: first, Count: cnt}
		return true
	})
	if err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	flush()
	return ferr
}

// ChangesSince calls fn with the runs of blocks that differ between the
// snapshot named baseID ("ebs:snap-…", an earlier snapshot of the same
// lineage) and this one, from ListChangedBlocks. Blocks present only in the
// base are listed too: they read as zeros here. An unknown base, one of
// another lineage or an ID that is not an EBS snapshot gives an error
// wrapping [blockdiff.ErrUnrelated].
func (s *Source) ChangesSince(ctx context.Context, baseID string, fn func(blockdiff.Extent) error) error {
	base, ok := strings.CutPrefix(baseID, "ebs:")
	if !ok || !strings.HasPrefix(base, "snap-") {
		return fmt.Errorf("ebs: changes of %s since %q: not an EBS snapshot: %w", s.id, baseID, blockdiff.ErrUnrelated)
	}
	if base == s.id {
		return nil
	}
	n, r := s.geom.Blocks(), s.ratio()
	var cur blockdiff.Extent
	emit := func() error {
		if cur.Count == 0 {
			return nil
		}
		err := fn(cur)
		cur = blockdiff.Extent{}
		return err
	}
	p := awsebs.NewListChangedBlocksPaginator(s.api, &awsebs.ListChangedBlocksInput{
		FirstSnapshotId: aws.String(base), SecondSnapshotId: aws.String(s.id),
	}, func(o *awsebs.ListChangedBlocksPaginatorOptions) { o.Limit = int32(s.opts.PageSize) })
	for p.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		out, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = mapErr("ListChangedBlocks", base+".."+s.id, err)
			if errors.Is(err, blockdiff.ErrNotFound) && !errors.Is(err, blockdiff.ErrUnrelated) {
				err = fmt.Errorf("%w (%w)", blockdiff.ErrUnrelated, err)
			}
			return err
		}
		for _, b := range out.ChangedBlocks {
			first := int64(aws.ToInt32(b.BlockIndex)) * r
			if first >= n {
				continue
			}
			cnt := min(r, n-first)
			if cur.Count > 0 && cur.End() == first {
				cur.Count += cnt
				continue
			}
			if err := emit(); err != nil {
				return err
			}
			cur = blockdiff.Extent{First: first, Count: cnt}
		}
	}
	return emit()
}
