package blockdiff

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// DigestSize is the size of a [Digest] in bytes.
const DigestSize = 32

// DefaultBlockSize is the block size used when none is given: 512 KiB, the
// block of the EBS direct APIs.
const DefaultBlockSize = 512 << 10

// MinBlockSize and MaxBlockSize bound [Geometry.BlockSize]. Every block size
// is a power of two in this range.
const (
	MinBlockSize = 4 << 10
	MaxBlockSize = 16 << 20
)

// Digest is the SHA-256 of one block's bytes. It is comparable and usable as
// a map key.
type Digest [DigestSize]byte

// String returns the digest as 64 lowercase hex digits.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses 64 hex digits into a Digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*DigestSize {
		return d, fmt.Errorf("blockdiff: digest %q: want %d hex digits, got %d", s, 2*DigestSize, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("blockdiff: digest %q: %w", s, err)
	}
	return d, nil
}

// Kind says what a block holds.
type Kind uint8

const (
	// Data is a block with at least one non-zero byte.
	Data Kind = iota
	// Zero is a block that was read and found to be all zero bytes.
	Zero
	// Hole is a block the source knows to be unallocated without reading
	// it; it reads as zeros.
	Hole
)

// String returns "data", "zero" or "hole".
func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Zero:
		return "zero"
	case Hole:
		return "hole"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsZero reports whether a block of this kind reads as all zeros.
func (k Kind) IsZero() bool { return k == Zero || k == Hole }

// Geometry is the shape of a volume: its size in bytes and its block size.
// Block i covers bytes [i*BlockSize, min((i+1)*BlockSize, Size)); the last
// block is short when Size is not a multiple of BlockSize.
type Geometry struct {
	Size      int64 // volume size in bytes, >= 0
	BlockSize int   // block size in bytes, a power of two in [MinBlockSize, MaxBlockSize]
}

// Validate reports an error wrapping [ErrGeometry] when g is not usable.
func (g Geometry) Validate() error {
	if err := ValidateBlockSize(g.BlockSize); err != nil {
		return err
	}
	if g.Size < 0 {
		return fmt.Errorf("blockdiff: volume size %d is negative: %w", g.Size, ErrGeometry)
	}
	return nil
}

// ValidateBlockSize reports an error wrapping [ErrGeometry] unless n is a
// power of two between [MinBlockSize] and [MaxBlockSize].
func ValidateBlockSize(n int) error {
	if n < MinBlockSize || n > MaxBlockSize || bits.OnesCount(uint(n)) != 1 {
		return fmt.Errorf("blockdiff: block size %d must be a power of two from %d (4 KiB) to %d (16 MiB): %w",
			n, MinBlockSize, MaxBlockSize, ErrGeometry)
	}
	return nil
}

// Blocks returns the number of blocks, counting a short last block.
func (g Geometry) Blocks() int64 {
	if g.BlockSize <= 0 {
		return 0
	}
	return (g.Size + int64(g.BlockSize) - 1) / int64(g.BlockSize)
}

// BlockLen returns the length in bytes of block i: BlockSize for every block
// but a short last one, and 0 for an index out of range.
func (g Geometry) BlockLen(i int64) int {
	n := g.Blocks()
	if i < 0 || i >= n {
		return 0
	}
	if i == n-1 {
		if r := int(g.Size % int64(g.BlockSize)); r != 0 {
			return r
		}
	}
	return g.BlockSize
}

// Offset returns the byte offset of block i.
func (g Geometry) Offset(i int64) int64 { return i * int64(g.BlockSize) }

// String returns a short human form such as "1073741824 bytes in 2048 blocks of 524288".
func (g Geometry) String() string {
	return fmt.Sprintf("%d bytes in %d blocks of %d", g.Size, g.Blocks(), g.BlockSize)
}

// Sentinel errors. Adapters wrap them with %w, keeping the cause in the chain;
// test with [errors.Is].
var (
	// ErrNotFound: a snapshot, chunk, object or file does not exist.
	ErrNotFound = errors.New("not found")
	// ErrChecksum: data does not match its digest or checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrClosed: the source, sink or stream was already closed.
	ErrClosed = errors.New("closed")
	// ErrGeometry: a size or block size is invalid or does not match.
	ErrGeometry = errors.New("geometry mismatch")
	// ErrCorrupt: an encoded manifest, journal or chunk is truncated or corrupt.
	ErrCorrupt = errors.New("corrupt data")
	// ErrOutOfRange: a block index is outside the volume.
	ErrOutOfRange = errors.New("block index out of range")
	// ErrUnrelated: a change list was asked against a base the source
	// cannot compare with (another lineage, an unknown snapshot).
	ErrUnrelated = errors.New("unrelated base")
)

// BlockError is the typed error for a failure at one block. Side is "source"
// or "sink" (or another short word naming the party), Op the operation.
type BlockError struct {
	Op    string // "read", "write", "verify", ...
	Side  string // "source", "sink", "target"
	Index int64  // block index
	Err   error
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("%s %s block %d: %v", e.Side, e.Op, e.Index, e.Err)
}

// Unwrap returns the underlying error.
func (e *BlockError) Unwrap() error { return e.Err }

// Source is a volume read block by block. Its geometry is fixed when it is
// opened.
//
// ReadBlock reads block index into buf[:n] and returns n, which is
// Geometry().BlockLen(index). buf must be at least that long; the source
// does not keep buf. An index outside the volume gives an error wrapping
// [ErrOutOfRange]. ReadBlock checks ctx before reading and returns its error
// when it is done. ReadBlock is safe for concurrent use.
//
// Optional capabilities are found by type assertion: [Extenter],
// [Manifester], [ChangeLister].
type Source interface {
	Geometry() Geometry
	ReadBlock(ctx context.Context, index int64, buf []byte) (n int, err error)
}

// Extent is a run of Count blocks starting at block First.
type Extent struct {
	First, Count int64
}

// End returns First+Count, the index after the extent.
func (e Extent) End() int64 { return e.First + e.Count }

// Extenter is a Source that knows where its data may be. Extents calls fn for
// each run of blocks that may hold data, in ascending order and without
// overlap; every block outside these runs is a hole and reads as zeros. A
// block inside a run may still be all zeros. The first error from fn stops
// the walk and is returned.
type Extenter interface {
	Extents(ctx context.Context, fn func(Extent) error) error
}

// Manifester is a Source whose block digests are known without reading its
// data (a content-addressed snapshot, a cached manifest).
type Manifester interface {
	Manifest(ctx context.Context) (*Manifest, error)
}

// ChangeLister is a Source that can list its own changes against an earlier
// version of the same lineage, such as an EBS snapshot against its parent.
//
// ID names this version so that a later run can ask for changes since it
// (for example "ebs:snap-0123456789abcdef0"). ChangesSince calls fn for each
// run of blocks that may differ from the version named baseID, in ascending
// order; blocks outside these runs are unchanged. A baseID the source cannot
// compare with gives an error wrapping [ErrUnrelated].
type ChangeLister interface {
	ID() string
	ChangesSince(ctx context.Context, baseID string, fn func(Extent) error) error
}

// Sink is a volume written block by block. Its geometry is fixed when it is
// opened or created.
//
// WriteBlock writes data, which is block index (len(data) ==
// Geometry().BlockLen(index)), whose SHA-256 is d; the digest is passed so
// that no sink hashes again. The sink does not keep data after it returns.
// WriteBlock is safe for concurrent use on different indices.
//
// Commit makes everything written durable and seals the result; m is the
// manifest of the whole volume as it now stands. After Commit or Close no
// more writes are accepted. Close releases resources; a sink closed without
// Commit leaves what was written but does not seal it.
//
// Optional capabilities are found by type assertion: [Zeroer], [Haser],
// [Copier], and Source (a sink that can be read back).
type Sink interface {
	Geometry() Geometry
	WriteBlock(ctx context.Context, index int64, data []byte, d Digest) error
	Commit(ctx context.Context, m *Manifest) error
	Close() error
}

// Zeroer is a Sink that can make a run of blocks read as zeros without
// receiving zero bytes (punching holes, discarding, or not storing them).
type Zeroer interface {
	ZeroBlocks(ctx context.Context, e Extent) error
}

// Haser is a Sink that may already hold some contents by digest (a
// content-addressed store). HasDigests sets has[i] for each ds[i] it holds;
// len(has) == len(ds). A sink that holds a digest still needs WriteBlock for
// the index, but the engine may then pass the block without reading it (see
// [Referencer]).
type Haser interface {
	HasDigests(ctx context.Context, ds []Digest, has []bool) error
}

// Referencer is a Sink that can record block index as holding content d it
// already has, without receiving the bytes (a content-addressed store).
type Referencer interface {
	WriteRef(ctx context.Context, index int64, d Digest) error
}

// Copier is a Sink that can copy a block it already holds at index src to
// index dst locally, instead of receiving the bytes again.
type Copier interface {
	CopyBlock(ctx context.Context, dst, src int64) error
}
