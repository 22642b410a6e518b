package ebs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	mathbits "math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// Defaults of [SinkOptions].
const (
	DefaultSnapshotTimeout = 60 * time.Minute
	DefaultWaitTimeout     = 60 * time.Minute
	DefaultWaitMinDelay    = 15 * time.Second
	DefaultWaitMaxDelay    = 120 * time.Second
)

// SinkOptions configure [NewSnapshot]. Size is required; every other field
// has a working zero value.
type SinkOptions struct {
	// Size is the volume size in bytes (the source's). The snapshot's
	// VolumeSize is Size rounded up to whole GiB; a short last block is
	// zero-padded to 512 KiB. Required.
	Size int64
	// ParentSnapshotID makes the snapshot incremental on a completed
	// snapshot: it starts with the parent's content. Default "": a full
	// snapshot that starts empty.
	ParentSnapshotID string
	// ClientToken is StartSnapshot's idempotency token, kept for the
	// logical operation (and in the state file). Default: a random UUID.
	ClientToken string
	// Tags are set on the snapshot, in this order.
	Tags []types.Tag
	// Description is the snapshot's description, up to 255 characters.
	// Default: none.
	Description string
	// Encrypted requests an encrypted snapshot, with KMSKeyARN or the
	// account's default EBS key. It cannot be combined with
	// ParentSnapshotID (an incremental snapshot inherits the parent's
	// encryption). Default false.
	Encrypted bool
	// KMSKeyARN is the KMS key of an encrypted snapshot. Default: the
	// account's default EBS key.
	KMSKeyARN string
	// Timeout is how long the pending snapshot waits for the next put or
	// for CompleteSnapshot before it is cancelled, 10 min to 72 h, in whole
	// minutes. Default [DefaultSnapshotTimeout] (60 min).
	Timeout time.Duration
	// StatePath, when set, is a small file recording the pending snapshot
	// id, the client token and the blocks already put, so that a restarted
	// run continues the same pending snapshot (see [Sink.Resumed]). It is
	// removed after a successful Commit. Default "": no resume.
	StatePath string
	// WaitTimeout is how long Commit waits for the snapshot to reach
	// completed when an EC2 client is given. Default
	// [DefaultWaitTimeout] (60 min).
	WaitTimeout time.Duration
	// WaitMinDelay and WaitMaxDelay are the waiter's poll delays. Default
	// [DefaultWaitMinDelay] (15 s) and [DefaultWaitMaxDelay] (120 s).
	WaitMinDelay, WaitMaxDelay time.Duration
	// RequestTimeout bounds one API operation, retries included. Default
	// [DefaultRequestTimeout] (10 min).
	RequestTimeout time.Duration
	// Logger receives info records (snapshot started, resumed, restarted,
	// completed). Default: none.
	Logger *slog.Logger
}

// Sink writes a new EBS snapshot through the EBS direct APIs. It
// implements [blockdiff.Sink] and the optional replicate capabilities
// UnwrittenZero, Identifier and Syncer.
type Sink struct {
	api  EBSAPI
	ec2  EC2API
	opts SinkOptions
	geom blockdiff.Geometry
	log  *slog.Logger
	id   string
	vs   int64 // VolumeSize GiB
	// unwrittenZero: no parent and not encrypted.
	unwrittenZero      bool
	resumed, restarted bool
	zeroDigest         [32]byte // of BlockSize zero bytes

	mu        sync.Mutex
	written   []uint64 // bitset of EBS block indices put to this snapshot
	lastPad   *[32]byte
	pending   []byte   // state records not yet in the file
	state     *os.File // nil without StatePath
	err       error    // first fatal error
	done      bool     // committed or closed
	committed bool
}

var _ blockdiff.Sink = (*Sink)(nil)

// stateHeader is the first line of the state file.
type stateHeader struct {
	Format      string `json:"format"`
	SnapshotID  string `json:"snapshot_id"`
	ClientToken string `json:"client_token"`
	Size        int64  `json:"size"`
	VolumeSize  int64  `json:"volume_size_gib"`
	Parent      string `json:"parent,omitempty"`
	Encrypted   bool   `json:"encrypted,omitempty"`
	KMSKeyARN   string `json:"kms_key_arn,omitempty"`
	Description string `json:"description,omitempty"`
	// UnwrittenZero records [Sink.UnwrittenZero] as StartSnapshot's
	// answer showed it (encryption by default included).
	UnwrittenZero bool `json:"unwritten_zero,omitempty"`
}

const stateFormat = "blockferry-ebs-sink/1"

// NewSnapshot starts a new pending snapshot (StartSnapshot), or continues
// the one recorded at opts.StatePath while it is still pending. ec2 may be
// nil; with it, Commit waits until the snapshot is completed and a resumed
// snapshot's state is checked with DescribeSnapshots.
func NewSnapshot(ctx context.Context, api EBSAPI, ec2c EC2API, opts SinkOptions) (*Sink, error) {
	if api == nil {
		return nil, errors.New("ebs: new snapshot: nil EBS client")
	}
	if opts.Size <= 0 {
		return nil, fmt.Errorf("ebs: new snapshot: size %d bytes: give the source volume's size: %w", opts.Size, blockdiff.ErrGeometry)
	}
	vs := (opts.Size + GiB - 1) / GiB
	if vs > 65536 {
		return nil, fmt.Errorf("ebs: new snapshot: %d GiB is over the EBS maximum of 65536 GiB: %w", vs, blockdiff.ErrGeometry)
	}
	if opts.Encrypted && opts.ParentSnapshotID != "" {
		return nil, errors.New("ebs: new snapshot: Encrypted and ParentSnapshotID cannot be combined; an incremental snapshot inherits its parent's encryption (copy the parent encrypted first)")
	}
	if opts.KMSKeyARN != "" && !opts.Encrypted {
		return nil, errors.New("ebs: new snapshot: a KMS key needs Encrypted")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultSnapshotTimeout
	}
	if opts.Timeout < 10*time.Minute || opts.Timeout > 72*time.Hour {
		return nil, fmt.Errorf("ebs: new snapshot: timeout %v must be 10m to 72h", opts.Timeout)
	}
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	if opts.WaitMinDelay == 0 {
		opts.WaitMinDelay = DefaultWaitMinDelay
	}
	if opts.WaitMaxDelay == 0 {
		opts.WaitMaxDelay = max(DefaultWaitMaxDelay, opts.WaitMinDelay)
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.WaitTimeout < 0 || opts.WaitMinDelay < 0 || opts.WaitMaxDelay < opts.WaitMinDelay || opts.RequestTimeout < 0 {
		return nil, errors.New("ebs: new snapshot: WaitTimeout, WaitMinDelay and RequestTimeout must not be negative, WaitMaxDelay not below WaitMinDelay")
	}
	s := &Sink{
		api: api, ec2: ec2c, opts: opts, vs: vs, log: opts.Logger,
		geom:       blockdiff.Geometry{Size: opts.Size, BlockSize: BlockSize},
		zeroDigest: hashing.ZeroDigest(BlockSize),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.written = make([]uint64, (vs*blocksPerGiB+63)/64)
	hdr := s.header()
	if opts.StatePath != "" {
		ok, err := s.resume(ctx, &hdr)
		if err != nil {
			return nil, err
		}
		if ok {
			return s, nil
		}
	}
	if hdr.ClientToken == "" {
		hdr.ClientToken = newUUID()
	}
	out, err := s.start(ctx, hdr.ClientToken)
	if err != nil {
		return nil, err
	}
	s.id = aws.ToString(out.SnapshotId)
	s.unwrittenZero = opts.ParentSnapshotID == "" && !opts.Encrypted && aws.ToString(out.KmsKeyArn) == "" &&
		(out.SseType == "" || out.SseType == types.SSETypeNone)
	hdr.SnapshotID, hdr.UnwrittenZero = s.id, s.unwrittenZero
	if opts.StatePath != "" {
		if err := s.createState(hdr); err != nil {
			return nil, err
		}
	}
	s.log.Info("ebs: snapshot started", "snapshot", s.id, "volume_size_gib", vs, "parent", opts.ParentSnapshotID)
	return s, nil
}

func (s *Sink) header() stateHeader {
	return stateHeader{
		Format: stateFormat, ClientToken: s.opts.ClientToken, Size: s.opts.Size, VolumeSize: s.vs,
		Parent: s.opts.ParentSnapshotID, Encrypted: s.opts.Encrypted, KMSKeyARN: s.opts.KMSKeyARN,
		Description: s.opts.Description,
	}
}

// start calls StartSnapshot with client token tok.
func (s *Sink) start(ctx context.Context, tok string) (*awsebs.StartSnapshotOutput, error) {
	in := &awsebs.StartSnapshotInput{
		VolumeSize:  aws.Int64(s.vs),
		ClientToken: aws.String(tok),
		Timeout:     aws.Int32(int32(s.opts.Timeout / time.Minute)),
		Tags:        s.opts.Tags,
	}
	if s.opts.ParentSnapshotID != "" {
		in.ParentSnapshotId = aws.String(s.opts.ParentSnapshotID)
	}
	if s.opts.Description != "" {
		in.Description = aws.String(s.opts.Description)
	}
	if s.opts.Encrypted {
		in.Encrypted = aws.Bool(true)
	}
	if s.opts.KMSKeyARN != "" {
		in.KmsKeyArn = aws.String(s.opts.KMSKeyARN)
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	out, err := s.api.StartSnapshot(cctx, in)
	if err != nil {
		what := "new snapshot"
		if s.opts.ParentSnapshotID != "" {
			what = "snapshot on parent " + s.opts.ParentSnapshotID
		}
		return nil, mapErr("StartSnapshot", what, err)
	}
	if aws.ToString(out.SnapshotId) == "" {
		return nil, errors.New("ebs: StartSnapshot returned no snapshot id")
	}
	return out, nil
}

// resume reads the state file. It reports true when the recorded snapshot
// is still pending and s now continues it; false (with hdr.ClientToken
// cleared for a fresh start) when there is no state or the snapshot cannot
// be continued.
func (s *Sink) resume(ctx context.Context, hdr *stateHeader) (bool, error) {
	path := s.opts.StatePath
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ebs: read snapshot state: %w", err)
	}
	line, rest, _ := bytes.Cut(data, []byte{'\n'})
	var got stateHeader
	if err := json.Unmarshal(line, &got); err != nil || got.Format != stateFormat || got.SnapshotID == "" {
		return false, fmt.Errorf("ebs: snapshot state %s is not a blockferry EBS sink state (%v): %w; delete it to start a new snapshot", path, err, blockdiff.ErrCorrupt)
	}
	want := *hdr
	want.SnapshotID, want.ClientToken, want.UnwrittenZero = got.SnapshotID, got.ClientToken, got.UnwrittenZero
	if got != want {
		return false, fmt.Errorf("ebs: snapshot state %s belongs to another snapshot request (%s of %d bytes, parent %q); finish that one or delete the file", path, got.SnapshotID, got.Size, got.Parent)
	}
	pending, err := s.stillPending(ctx, got)
	if err != nil {
		return false, err
	}
	if !pending {
		s.log.Info("ebs: recorded snapshot can no longer be written; starting a new one", "snapshot", got.SnapshotID, "state", path)
		s.restarted = true
		hdr.ClientToken = ""
		if s.opts.ClientToken != "" && s.opts.ClientToken == got.ClientToken {
			return false, fmt.Errorf("ebs: snapshot %s of client token %q is no longer pending; pass another client token (or none) to start a new snapshot", got.SnapshotID, got.ClientToken)
		}
		hdr.ClientToken = s.opts.ClientToken
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("ebs: remove stale snapshot state: %w", err)
		}
		return false, nil
	}
	s.id = got.SnapshotID
	*hdr = got
	// Records: "p <index>" or "p <index> <hex padded digest>"; a torn last
	// line (no newline) is ignored.
	good := len(line) + 1
	for len(rest) > 0 {
		rec, next, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			break
		}
		f := strings.Fields(string(rec))
		if len(f) < 2 || f[0] != "p" {
			return false, fmt.Errorf("ebs: snapshot state %s: bad record %q: %w; delete it to start a new snapshot", path, rec, blockdiff.ErrCorrupt)
		}
		i, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || i < 0 || i >= s.vs*blocksPerGiB {
			return false, fmt.Errorf("ebs: snapshot state %s: bad block index in %q: %w", path, rec, blockdiff.ErrCorrupt)
		}
		s.written[i/64] |= 1 << (i % 64)
		if len(f) == 3 {
			var d [32]byte
			if b, err := hex.DecodeString(f[2]); err != nil || len(b) != 32 {
				return false, fmt.Errorf("ebs: snapshot state %s: bad digest in %q: %w", path, rec, blockdiff.ErrCorrupt)
			} else {
				copy(d[:], b)
			}
			s.lastPad = &d
		}
		good += len(rec) + 1
		rest = next
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("ebs: open snapshot state: %w", err)
	}
	if err := fh.Truncate(int64(good)); err == nil {
		_, err = fh.Seek(int64(good), 0)
	}
	if err != nil {
		fh.Close()
		return false, fmt.Errorf("ebs: snapshot state %s: %w", path, err)
	}
	s.state = fh
	s.resumed = true
	s.unwrittenZero = got.UnwrittenZero
	s.log.Info("ebs: continuing pending snapshot", "snapshot", s.id, "blocks_put", s.putCount(), "state", path)
	return true, nil
}

// stillPending reports whether the recorded snapshot can still be
// written: through DescribeSnapshots when an EC2 client is given, else by
// replaying StartSnapshot with the recorded client token (idempotent: the
// same snapshot comes back, with its status).
func (s *Sink) stillPending(ctx context.Context, h stateHeader) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	if s.ec2 != nil {
		out, err := s.ec2.DescribeSnapshots(cctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{h.SnapshotID}})
		if err != nil {
			if isEC2NotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("ebs: DescribeSnapshots %s (recorded in %s): %w", h.SnapshotID, s.opts.StatePath, err)
		}
		for _, sn := range out.Snapshots {
			if aws.ToString(sn.SnapshotId) == h.SnapshotID {
				return sn.State == ec2types.SnapshotStatePending, nil
			}
		}
		return false, nil
	}
	out, err := s.start(ctx, h.ClientToken)
	if err != nil {
		var ce *types.ConflictException
		if errors.As(err, &ce) || errors.Is(err, blockdiff.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if aws.ToString(out.SnapshotId) != h.SnapshotID {
		return false, nil // the token was forgotten: a new snapshot was started; let it time out
	}
	return out.Status == types.StatusPending, nil
}

// isEC2NotFound reports whether err is EC2's InvalidSnapshot.NotFound.
func isEC2NotFound(err error) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidSnapshot.NotFound"
}

// createState writes a new state file atomically.
func (s *Sink) createState(h stateHeader) error {
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	path := s.opts.StatePath
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("ebs: create snapshot state: %w", err)
	}
	_, err = tmp.Write(append(line, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("ebs: write snapshot state %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	s.state = tmp
	return nil
}

// Geometry returns the volume's geometry (SinkOptions.Size, 512 KiB blocks).
func (s *Sink) Geometry() blockdiff.Geometry { return s.geom }

// ID returns "ebs:" followed by the snapshot id.
func (s *Sink) ID() string { return "ebs:" + s.id }

// SnapshotID returns the pending (or completed) snapshot's id.
func (s *Sink) SnapshotID() string { return s.id }

// Resumed reports whether the sink continues a pending snapshot recorded
// in SinkOptions.StatePath.
func (s *Sink) Resumed() bool { return s.resumed }

// Restarted reports whether SinkOptions.StatePath named a snapshot that
// could no longer be written, so a new one was started. A replication
// journal kept for the old snapshot no longer holds: delete it before
// running (replicate refuses it, as it names the old snapshot).
func (s *Sink) Restarted() bool { return s.restarted }

// UnwrittenZero reports whether blocks never put read as zeros, so that
// zero blocks may be skipped: true for a snapshot without parent that is
// not encrypted. An encrypted snapshot gets written zeros, and an
// incremental one inherits its parent's data (docs/ebs-direct-api.md §5.4,
// §5.9).
func (s *Sink) UnwrittenZero() bool { return s.unwrittenZero }

func (s *Sink) putCount() int64 {
	var n int64
	for _, w := range s.written {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// WriteBlock puts block index with PutSnapshotBlock, sending d (base64) as
// its checksum; a short last block is zero-padded to 512 KiB and hashed
// again. The SDK retries throttling and server errors with a rewound body.
func (s *Sink) WriteBlock(ctx context.Context, index int64, data []byte, d blockdiff.Digest) error {
	if err := s.check(); err != nil {
		return err
	}
	n := s.geom.BlockLen(index)
	if n == 0 {
		return fmt.Errorf("ebs: write snapshot %s block %d of %d: %w", s.id, index, s.geom.Blocks(), blockdiff.ErrOutOfRange)
	}
	if len(data) != n {
		return fmt.Errorf("ebs: write snapshot %s block %d: %d bytes, want %d", s.id, index, len(data), n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	body, sum := data, [32]byte(d)
	padded := n != BlockSize
	if padded {
		body = make([]byte, BlockSize) // at most one block per volume
		copy(body, data)
		sum = hashing.Sum256(body)
	}
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	out, err := s.api.PutSnapshotBlock(cctx, &awsebs.PutSnapshotBlockInput{
		SnapshotId:        aws.String(s.id),
		BlockIndex:        aws.Int32(int32(index)),
		BlockData:         bytes.NewReader(body),
		DataLength:        aws.Int32(BlockSize),
		Checksum:          aws.String(b64),
		ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = mapErr("PutSnapshotBlock", s.id, err)
		if isNotPending(err) && s.opts.StatePath != "" {
			err = fmt.Errorf("%w; the pending snapshot is gone (timed out?): run again to start a new one", err)
		}
		return err
	}
	if c := aws.ToString(out.Checksum); c != "" && c != b64 {
		return fmt.Errorf("ebs: PutSnapshotBlock %s block %d: service computed checksum %s, sent %s: %w", s.id, index, c, b64, blockdiff.ErrChecksum)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written[index/64] |= 1 << (index % 64)
	if padded {
		s.lastPad = &sum
	}
	if s.state != nil {
		s.pending = append(s.pending, "p "...)
		s.pending = strconv.AppendInt(s.pending, index, 10)
		if padded {
			s.pending = append(s.pending, ' ')
			s.pending = hex.AppendEncode(s.pending, sum[:])
		}
		s.pending = append(s.pending, '\n')
	}
	return nil
}

// check returns the sink's fatal error, or ErrClosed after Commit/Close.
func (s *Sink) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.done {
		return fmt.Errorf("ebs: snapshot %s: %w", s.id, blockdiff.ErrClosed)
	}
	return nil
}

// Sync writes the record of every completed put to the state file and
// fsyncs it. Without StatePath it does nothing.
func (s *Sink) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Sink) syncLocked() error {
	if s.state == nil || len(s.pending) == 0 {
		return nil
	}
	if _, err := s.state.Write(s.pending); err != nil {
		s.err = fmt.Errorf("ebs: write snapshot state %s: %w", s.opts.StatePath, err)
		return s.err
	}
	s.pending = s.pending[:0]
	if err := s.state.Sync(); err != nil {
		s.err = fmt.Errorf("ebs: sync snapshot state %s: %w", s.opts.StatePath, err)
		return s.err
	}
	return nil
}

// Commit seals the snapshot with CompleteSnapshot, sending the number of
// blocks put to it (in this run and in the runs it continues) and their
// LINEAR checksum, and then, with an EC2 client, waits until it is
// completed. m is the volume's manifest: it gives the digest of each block
// put. A snapshot that ends in error gives an error naming its state
// message.
func (s *Sink) Commit(ctx context.Context, m *blockdiff.Manifest) error {
	if err := s.check(); err != nil {
		return err
	}
	if m == nil || m.Geometry() != s.geom {
		return fmt.Errorf("ebs: commit snapshot %s: need the manifest of the %v volume: %w", s.id, s.geom, blockdiff.ErrGeometry)
	}
	s.mu.Lock()
	if err := s.syncLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	var lin hashing.Linear
	last := s.geom.Blocks() - 1
	for w, bits := range s.written {
		for ; bits != 0; bits &= bits - 1 {
			i := int64(w)*64 + int64(mathbits.TrailingZeros64(bits))
			switch {
			case i > last:
				// beyond the volume (not reachable through WriteBlock)
			case m.Kind(i).IsZero():
				lin.Add(s.zeroDigest)
			case i == last && s.geom.BlockLen(i) != BlockSize:
				if s.lastPad == nil {
					s.mu.Unlock()
					return fmt.Errorf("ebs: commit snapshot %s: padded digest of the last block missing: %w", s.id, blockdiff.ErrCorrupt)
				}
				lin.Add(*s.lastPad)
			default:
				lin.Add(m.Entry(i).Digest)
			}
		}
	}
	s.done = true
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	_, err := s.api.CompleteSnapshot(cctx, &awsebs.CompleteSnapshotInput{
		SnapshotId:                aws.String(s.id),
		ChangedBlocksCount:        aws.Int32(int32(lin.Count())),
		Checksum:                  aws.String(lin.Base64()),
		ChecksumAlgorithm:         types.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear,
	})
	cancel()
	if err != nil {
		s.fail(mapErr("CompleteSnapshot", s.id, err))
		return s.err
	}
	if s.ec2 != nil {
		if err := WaitCompleted(ctx, s.ec2, []string{s.id}, WaitOptions{Timeout: s.opts.WaitTimeout, MinDelay: s.opts.WaitMinDelay, MaxDelay: s.opts.WaitMaxDelay}); err != nil {
			s.fail(fmt.Errorf("ebs: snapshot %s (%d blocks put) did not complete: %w", s.id, lin.Count(), err))
			return s.err
		}
	}
	s.mu.Lock()
	s.committed = true
	s.mu.Unlock()
	s.log.Info("ebs: snapshot completed", "snapshot", s.id, "blocks_put", lin.Count())
	return s.closeState(true)
}

func (s *Sink) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// closeState closes the state file, removing it when remove is set.
func (s *Sink) closeState(remove bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return nil
	}
	err := s.syncLocked()
	if cerr := s.state.Close(); err == nil {
		err = cerr
	}
	s.state = nil
	if remove && err == nil {
		if rerr := os.Remove(s.opts.StatePath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	return err
}

// Close releases the sink. A snapshot closed without Commit stays pending
// (until its Timeout), and the state file keeps what was put so that a
// later run can continue it.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	return s.closeState(false)
}

// WaitOptions configure [WaitCompleted]. The zero value waits up to
// [DefaultWaitTimeout] with the SDK waiter's 15 s to 120 s delays.
type WaitOptions struct {
	Timeout            time.Duration
	MinDelay, MaxDelay time.Duration
}

// WaitCompleted waits until every snapshot in ids is completed
// (DescribeSnapshots through the SDK's SnapshotCompleted waiter). It fails
// as soon as any is in error, naming it and its state message.
func WaitCompleted(ctx context.Context, api EC2API, ids []string, o WaitOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = DefaultWaitTimeout
	}
	if o.MinDelay <= 0 {
		o.MinDelay = DefaultWaitMinDelay
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = max(DefaultWaitMaxDelay, o.MinDelay)
	}
	w := ec2.NewSnapshotCompletedWaiter(api, func(wo *ec2.SnapshotCompletedWaiterOptions) {
		wo.MinDelay, wo.MaxDelay = o.MinDelay, o.MaxDelay
	})
	err := w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids}, o.Timeout)
	if err == nil {
		return nil
	}
	// Name the failed snapshots.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, derr := api.DescribeSnapshots(dctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if derr != nil {
		return fmt.Errorf("ebs: wait for %s: %w", strings.Join(ids, ", "), err)
	}
	var bad []string
	for _, sn := range out.Snapshots {
		if sn.State != ec2types.SnapshotStateCompleted {
			bad = append(bad, fmt.Sprintf("%s is %s (%s)", aws.ToString(sn.SnapshotId), sn.State, aws.ToString(sn.StateMessage)))
		}
	}
	sort.Strings(bad)
	return fmt.Errorf("ebs: wait for completed: %s: %w", strings.Join(bad, "; "), err)
}

// newUUID returns a random UUIDv4 string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+): it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
