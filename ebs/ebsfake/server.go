package ebsfake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/blockferry/blockferry/hashing"
)

// BlockSize is the only block size the EBS direct APIs support, in bytes.
const BlockSize = 524288

// blocksPerGiB is the number of blocks in one GiB of volume.
const blocksPerGiB = (1 << 30) / BlockSize

// Durations fixed by the service documentation.
const (
	blockTokenTTL  = 7 * 24 * time.Hour
	pageTokenTTL   = 60 * time.Minute
	clientTokenTTL = 24 * time.Hour
)

// Status is the state of a snapshot, as it appears on the wire.
type Status string

// Snapshot states.
const (
	StatusPending   Status = "pending"
	StatusCompleted Status = "completed"
	StatusError     Status = "error"
)

// Op names an operation served by the fake. The values are the AWS operation names.
type Op string

// Operations of the EBS direct APIs, and the EC2/Storage Gateway calls the fake also serves.
const (
	OpStartSnapshot      Op = "StartSnapshot"
	OpPutSnapshotBlock   Op = "PutSnapshotBlock"
	OpCompleteSnapshot   Op = "CompleteSnapshot"
	OpListSnapshotBlocks Op = "ListSnapshotBlocks"
	OpListChangedBlocks  Op = "ListChangedBlocks"
	OpGetSnapshotBlock   Op = "GetSnapshotBlock"
	OpEC2CreateSnapshot  Op = "ec2:CreateSnapshot"
	OpEC2CreateSnapshots Op = "ec2:CreateSnapshots"
	OpEC2Describe        Op = "ec2:DescribeSnapshots"
	OpSGWCreateSnapshot  Op = "storagegateway:CreateSnapshot"
	OpUnknown            Op = "Unknown"
)

// Throttle configures token-bucket rate limits. Rates are requests per second; a zero rate
// means unlimited. Buckets run on [Options.Clock], so a test can throttle deterministically.
type Throttle struct {
	// PutPerSnapshot limits PutSnapshotBlock per snapshot (the real quota is 1000/s).
	// Excess requests get 400 RequestThrottledException, Reason RESOURCE_LEVEL_THROTTLE.
	PutPerSnapshot float64
	// GetPerSnapshot limits GetSnapshotBlock per snapshot (the real quota is 1000/s).
	// Excess requests get 400 RequestThrottledException, Reason RESOURCE_LEVEL_THROTTLE.
	GetPerSnapshot float64
	// Account limits all EBS direct API requests of the account together.
	// Excess requests get 400 RequestThrottledException, Reason ACCOUNT_THROTTLED.
	Account float64
	// Burst is the bucket size in requests. Default: the rate rounded up, at least 1.
	Burst int
}

// Options configures a [Server]. The zero value is a working fake in us-east-1.
type Options struct {
	// Clock returns the current time. It drives StartTime, token and page-token expiry,
	// snapshot Timeout, CompletionDelay and throttling. Default: time.Now.
	Clock func() time.Time
	// OwnerID is the 12-digit account id reported as OwnerId. Default "111122223333".
	OwnerID string
	// Region names the fake's region; it seeds snapshot ids and default KMS key ARNs.
	// Default "us-east-1".
	Region string
	// CompletionDelay is how long a completed snapshot stays pending after
	// CompleteSnapshot, measured on Clock. Default 0: completed on the next observation.
	CompletionDelay time.Duration
	// StrictComplete makes CompleteSnapshot with a wrong ChangedBlocksCount or LINEAR
	// checksum fail synchronously with 400 ValidationException. Default false: it answers
	// 202 pending and the snapshot then moves to error.
	StrictComplete bool
	// StrictChangedBlocks makes ListChangedBlocks without firstSnapshotId fail with 400
	// ValidationException. Default false: the first snapshot is treated as empty.
	StrictChangedBlocks bool
	// EncryptionByDefault models the account's EBS encryption-by-default setting (§5.9).
	// Default false.
	EncryptionByDefault bool
	// DataDir, when set, keeps block data in an append-only log file created in this
	// directory (ebsfake-*.blocks), so multi-GiB volumes do not live in memory. Close
	// removes the file. Default "": block data in memory. All-zero blocks are never stored.
	DataDir string
	// TokenKey is the HMAC key sealing block and page tokens. Default: 32 random bytes.
	TokenKey []byte
	// MaxPendingSnapshots is the number of pending snapshots above which StartSnapshot
	// fails with ConcurrentLimitExceededException. Default 100 (the service quota).
	MaxPendingSnapshots int
	// Latency is added to every request before it is handled. Default 0.
	Latency time.Duration
	// Throttle configures rate limits. Default: none.
	Throttle Throttle
	// Inject, when set, is consulted for every request after the rules added with
	// [Server.AddFault]; a non-nil result is applied instead of handling the request.
	Inject func(Call) *Fault
}

// Server is a fake EBS direct API endpoint; it is an [http.Handler]. It also serves the
// EC2 CreateSnapshot(s)/DescribeSnapshots and Storage Gateway CreateSnapshot calls at "/".
// A Server is safe for concurrent use. Several Servers are independent.
type Server struct {
	opts  Options
	now   func() time.Time
	key   []byte
	store blockStore

	mu      sync.Mutex
	snaps   map[string]*snapshot
	order   []string // snapshot ids in creation order
	idem    map[string]idemEntry
	seq     uint64
	gen     uint64
	rules   []*faultRule
	calls   map[callKey]int
	buckets map[string]*bucket
	stats   Stats
	volumes map[string]Volume
}

// New returns a Server configured by opts.
func New(opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.OwnerID == "" {
		opts.OwnerID = "111122223333"
	}
	if !ownerRe.MatchString(opts.OwnerID) {
		return nil, fmt.Errorf("ebsfake: owner id %q is not a 12-digit account id", opts.OwnerID)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.MaxPendingSnapshots == 0 {
		opts.MaxPendingSnapshots = 100
	}
	if opts.MaxPendingSnapshots < 0 {
		return nil, fmt.Errorf("ebsfake: MaxPendingSnapshots %d is negative; use 0 for the default of 100", opts.MaxPendingSnapshots)
	}
	if opts.CompletionDelay < 0 || opts.Latency < 0 {
		return nil, errors.New("ebsfake: CompletionDelay and Latency must not be negative")
	}
	t := opts.Throttle
	if t.PutPerSnapshot < 0 || t.GetPerSnapshot < 0 || t.Account < 0 || t.Burst < 0 {
		return nil, errors.New("ebsfake: Throttle rates and Burst must not be negative")
	}
	key := opts.TokenKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("ebsfake: token key: %w", err)
		}
	}
	s := &Server{
		opts:    opts,
		now:     opts.Clock,
		key:     append([]byte(nil), key...),
		snaps:   make(map[string]*snapshot),
		idem:    make(map[string]idemEntry),
		calls:   make(map[callKey]int),
		buckets: make(map[string]*bucket),
		stats:   newStats(),
	}
	if opts.DataDir != "" {
		st, err := openLogStore(opts.DataDir)
		if err != nil {
			return nil, err
		}
		s.store = st
	} else {
		s.store = memStore{}
	}
	return s, nil
}

// Close releases the block log of [Options.DataDir], removing its file. The Server must
// not serve requests afterwards. Close of a memory-backed Server, or a second Close, does
// nothing.
func (s *Server) Close() error { return s.store.close() }

var (
	ownerRe    = regexp.MustCompile(`^[0-9]{12}$`)
	snapIDRe   = regexp.MustCompile(`^snap-[0-9a-f]+$`)
	kmsArnRe   = regexp.MustCompile(`^arn:aws[a-z\-]*:kms:.*:[0-9]{12}:key/.*$`)
	base64Re   = regexp.MustCompile(`^[A-Za-z0-9+/=]+$`)
	noSpaceRe  = regexp.MustCompile(`^\S+$`)
	zeroDigest = hashing.ZeroDigest(BlockSize)
)

func validSnapshotID(id string) bool { return len(id) <= 64 && snapIDRe.MatchString(id) }

// newSnapshotID returns "snap-" and 17 hex digits, derived from the region, the owner and a
// sequence number, so ids are deterministic per fake and differ between regions.
// Callers hold s.mu.
func (s *Server) newSnapshotID() string {
	for {
		s.seq++
		h := sha256.Sum256([]byte(s.opts.Region + "/" + s.opts.OwnerID + "/" + strconv.FormatUint(s.seq, 10)))
		id := "snap-" + hex.EncodeToString(h[:9])[:17]
		if _, dup := s.snaps[id]; !dup {
			return id
		}
	}
}

// mac returns a truncated HMAC-SHA256 of msg.
func (s *Server) mac(msg []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(msg)
	return m.Sum(nil)[:16]
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", newRequestID())
	rt := s.route(r)
	s.count(rt.op)
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f := s.fault(rt); f != nil {
		s.applyFault(w, r, rt, f)
		return
	}
	if apiErr := s.throttle(rt); apiErr != nil {
		s.writeError(w, r, apiErr)
		return
	}
	rt.handle(w, r)
}

// newRequestID returns a random UUIDv4.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
