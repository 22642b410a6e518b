package replicate

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// DefaultMaxInFlight is the default bound on block bytes held in memory by
// one run: 64 MiB.
const DefaultMaxInFlight = 64 << 20

// DefaultProgressInterval is how often progress events are sent by default.
const DefaultProgressInterval = 100 * time.Millisecond

// ErrJournalMismatch is returned when a journal left by an earlier run
// belongs to another plan (another source, target, base or a changed
// source). The journal is never applied; finish the earlier run with its
// own arguments, or delete the journal to start over.
var ErrJournalMismatch = errors.New("journal belongs to another plan")

// ErrSameVolume is returned when the source and the target are the same
// volume.
var ErrSameVolume = errors.New("source and target are the same volume")

// ErrSourceChanged is returned when a source reports through
// [Fingerprinter] that it changed while it was being copied.
var ErrSourceChanged = errors.New("source changed during the copy")

// PlanKind names how a run found out what to send, in the order Run tries
// them.
type PlanKind string

const (
	// PlanChangeList: the source listed its own changes since Base.Origin
	// ([blockdiff.ChangeLister]); only the listed blocks were read.
	PlanChangeList PlanKind = "change-list"
	// PlanManifest: the source's digests were known
	// ([blockdiff.Manifester]) and diffed against Base without reading;
	// each distinct changed content was read once.
	PlanManifest PlanKind = "manifest"
	// PlanLiveManifest: no Base; the source's digests were known
	// ([blockdiff.Manifester]) and the target was readable, so the target
	// was hashed first (holes not read) and then diffed against the
	// source's manifest without reading the source; each distinct changed
	// content was read once, as in PlanManifest.
	PlanLiveManifest PlanKind = "live-manifest"
	// PlanHashBase: the source was read and hashed in one streaming pass
	// and compared with Base.
	PlanHashBase PlanKind = "hash-base"
	// PlanLiveTarget: no Base; the target was readable, so it was hashed
	// first and the source then streamed against it.
	PlanLiveTarget PlanKind = "live-target"
	// PlanFull: the target's content was unknown; every data block was
	// written and zero blocks were handled by [ZeroPolicy].
	PlanFull PlanKind = "full"
)

// VerifyMode says what Run reads back from the target before Commit.
type VerifyMode uint8

const (
	// VerifyNone reads nothing back (default).
	VerifyNone VerifyMode = iota
	// VerifyWritten re-reads every block this run wrote or zeroed and
	// compares its digest with the plan's.
	VerifyWritten
	// VerifyAll re-hashes the whole target and compares it with the
	// resulting manifest; it also catches a source that changed under the
	// copy in blocks that were skipped.
	VerifyAll
)

// String returns "none", "written" or "all".
func (v VerifyMode) String() string {
	switch v {
	case VerifyNone:
		return "none"
	case VerifyWritten:
		return "written"
	case VerifyAll:
		return "all"
	}
	return "verify(?)"
}

// ZeroPolicy says which zero and hole blocks of the source a full copy
// (target content unknown) may skip. Where the target is known to hold data
// at a block that is now zero (an incremental run), the block is always
// zeroed whatever the policy. To zero, Run uses [blockdiff.Zeroer] when the
// sink has it and writes zero bytes otherwise.
type ZeroPolicy uint8

const (
	// ZeroAuto (default) skips zero and hole blocks only when the sink
	// reports [UnwrittenZero] true, and zeroes them otherwise. This is
	// the safe choice.
	ZeroAuto ZeroPolicy = iota
	// ZeroAlways zeroes every zero and hole block, whatever the sink says.
	ZeroAlways
	// ZeroSkipHoles skips only the source's holes and zeroes blocks that
	// were read and found zero: for an encrypted EBS snapshot, where only
	// true holes may be left out (docs/ebs-direct-api.md §5.4).
	ZeroSkipHoles
	// ZeroSkip skips every zero and hole block: the caller asserts the
	// target reads unwritten blocks as zeros.
	ZeroSkip
)

// UnwrittenZero is an optional Sink capability. UnwrittenZero reports
// whether every block this sink has not been given reads as zeros (a file
// the sink created, a new unencrypted EBS snapshot without parent, a
// store). A sink opened over existing content must report false.
type UnwrittenZero interface {
	UnwrittenZero() bool
}

// Identifier is an optional Source or Sink capability. ID names the volume
// stably across processes ("file:/dev/sdb", "ebs:snap-…"); it goes into the
// journal's plan identity, and a source and sink with the same ID are
// refused as the same volume. [blockdiff.ChangeLister] has the same method.
type Identifier interface {
	ID() string
}

// Stater is an optional Source or Sink capability for OS-backed volumes;
// Run refuses a source and sink whose Stat results are [os.SameFile].
type Stater interface {
	Stat() (fs.FileInfo, error)
}

// Fingerprinter is an optional Source capability. Fingerprint summarises
// the source's current state (for a file: size, modification time, inode)
// so that a journal can tell a changed source, and Run can tell a source
// that changed during the copy: Run compares the fingerprint taken at the
// start with one taken at the end and fails with [ErrSourceChanged].
type Fingerprinter interface {
	Fingerprint(ctx context.Context) (string, error)
}

// Syncer is an optional Sink capability. Sync makes every completed write
// durable. When the sink has it, Run syncs the sink before each journal
// fsync, so that the journal never claims a block a power loss could undo.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Options configure [Run]. The zero value works.
type Options struct {
	// Base is what the target held before this run (the manifest saved by
	// an earlier run), or nil when unknown. Its geometry must equal the
	// source's.
	Base *blockdiff.Manifest

	// Concurrency is the number of blocks read and written at once.
	// Default runtime.GOMAXPROCS(0); remote sinks want more (16–64).
	Concurrency int

	// MaxInFlight bounds the block bytes held in memory, in bytes.
	// Default [DefaultMaxInFlight] (64 MiB). When fewer than Concurrency
	// blocks fit, concurrency is lowered to fit (at least one block).
	// Each worker holds up to [hashing.Lanes] blocks, so that they are
	// hashed side by side, as far as the bound leaves room once every
	// worker has one: the blocks in memory never exceed
	// max(1, MaxInFlight/BlockSize).
	MaxInFlight int64

	// BWLimit caps the bytes per second sent to the sink; 0 means no cap.
	BWLimit int64

	// Journal is the path of the resume journal; "" means none. See the
	// package documentation, "# Resume".
	Journal string

	// Verify chooses the read-back before Commit. Default [VerifyNone].
	Verify VerifyMode

	// Zero chooses which zero blocks a full copy may skip. Default
	// [ZeroAuto].
	Zero ZeroPolicy

	// SourceID and TargetID name the volumes for the journal and the
	// same-volume check. Default: [Identifier.ID] when the source or sink
	// has it, else "".
	SourceID, TargetID string

	// Progress, when set, is called from one goroutine with progress
	// events, at most every ProgressInterval and once at the end of each
	// phase with Final set. It must not block for long.
	Progress func(Event)

	// ProgressInterval is the minimum time between progress events.
	// Default [DefaultProgressInterval] (100 ms).
	ProgressInterval time.Duration

	// Logger receives debug and info records (plan chosen, resume, phase
	// ends). Default: none.
	Logger *slog.Logger

	// lanes overrides [hashing.Lanes] (blocks hashed side by side per
	// worker) when not zero. For tests, so that batching runs on any CPU.
	lanes int
}

// Event is one progress report.
type Event struct {
	Plan  PlanKind `json:"plan"`
	Phase string   `json:"phase"` // "hash-target", "copy" or "verify"

	PlannedBlocks int64 `json:"planned_blocks"` // blocks this phase examines
	PlannedBytes  int64 `json:"planned_bytes"`
	DoneBlocks    int64 `json:"done_blocks"` // blocks examined so far
	DoneBytes     int64 `json:"done_bytes"`

	ReadBlocks    int64 `json:"read_blocks"`
	ReadBytes     int64 `json:"read_bytes"`
	WrittenBlocks int64 `json:"written_blocks"` // written, zeroed, copied
	WrittenBytes  int64 `json:"written_bytes"`  // data blocks sent, as [Stats.BytesWritten]
	SkippedBlocks int64 `json:"skipped_blocks"` // unchanged or zero
	SkippedBytes  int64 `json:"skipped_bytes"`
	DedupedBlocks int64 `json:"deduped_blocks"` // written from a buffer read for another index
	DedupedBytes  int64 `json:"deduped_bytes"`

	Elapsed time.Duration `json:"elapsed_ns"`
	Rate    float64       `json:"rate_bytes_per_sec"` // DoneBytes per second
	ETA     time.Duration `json:"eta_ns"`             // 0 when unknown
	Final   bool          `json:"final"`
}

// Stats count what one run did. Block counts refer to blocks of the
// volume; a block counts once in exactly one of Written, Zeroed,
// Deduplicated, CopiedLocal, Referenced, SkippedUnchanged, SkippedZero and
// Resumed.
type Stats struct {
	Planned          int64 `json:"planned_blocks"`           // blocks of the volume the plan covers
	Read             int64 `json:"read_blocks"`              // blocks read from the source
	Written          int64 `json:"written_blocks"`           // blocks sent with WriteBlock (first copy of their content)
	Zeroed           int64 `json:"zeroed_blocks"`            // blocks made zero (Zeroer or written zeros)
	SkippedUnchanged int64 `json:"skipped_unchanged_blocks"` // target already held the content
	SkippedZero      int64 `json:"skipped_zero_blocks"`      // zero/hole blocks left out by ZeroPolicy
	Deduplicated     int64 `json:"deduplicated_blocks"`      // written from a buffer read for another index
	CopiedLocal      int64 `json:"copied_local_blocks"`      // copied by the sink from an unchanged index
	Referenced       int64 `json:"referenced_blocks"`        // recorded by reference to content the sink already held (Haser + Referencer)
	Resumed          int64 `json:"resumed_blocks"`           // done by an earlier run, per the journal
	Verified         int64 `json:"verified_blocks"`          // read back and matched

	BytesRead int64 `json:"bytes_read"` // from the source (and the target when hashing it)
	// BytesWritten is the bytes of the data blocks sent to the sink with
	// WriteBlock: the Written and Deduplicated blocks. Zeroed blocks do not
	// count, even where zero bytes were written to a sink without
	// [blockdiff.Zeroer]; nor do CopiedLocal and Referenced blocks, which
	// send no data.
	BytesWritten int64 `json:"bytes_written"`

	Duration time.Duration `json:"duration_ns"`
	Rate     float64       `json:"rate_bytes_per_sec"` // volume bytes covered per second
}

// Result is what [Run] returns on success.
type Result struct {
	Plan  PlanKind `json:"plan"`
	Stats Stats    `json:"stats"`
	// Manifest is the target's manifest after the run; save it and pass
	// it as Options.Base next time for an incremental run.
	Manifest *blockdiff.Manifest `json:"-"`
}
