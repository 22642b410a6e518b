// Package sink owns the standard-library [blockdiff.Sink] adapters: regular
// files and disk images (written sparsely), block devices, and memory.
//
// Glossary:
//   - [File]: a file or block device opened with [OpenFile] and written
//     with pwrite, only at the blocks it is given. It is also a
//     [blockdiff.Source], so a target can be verified or diffed live.
//   - zeroing: [File.ZeroBlocks] punches holes in a file (fallocate
//     PUNCH_HOLE), and on a device issues BLKZEROOUT, or BLKDISCARD with
//     [Options.Discard]; where these are unsupported it writes zeros.
//   - size policy: a new or smaller file grows to the volume size without
//     allocating; a larger file is refused unless [Options.Truncate]; a
//     device must be at least the volume size and is never resized.
//   - commit: fsync, then (with [Options.ManifestPath]) the manifest file,
//     written atomically by [blockdiff.WriteManifestFile]. [File.Sync]
//     fsyncs without committing, so an engine can make data durable
//     before its resume journal says so.
//   - unwritten zero: [File.UnwrittenZero] reports true only for a file
//     this OpenFile created, whose unwritten blocks are holes.
//   - [Memory]: an in-memory sink for tests and examples that records its
//     committed manifest and counts its writes.
//
// # Errors
//
// Errors are prefixed "sink:" and name the path. A failure at a block is a
// [blockdiff.BlockError] (Side "sink", Op "write", "read" or "copy")
// wrapping the OS error, so errors.Is finds syscall.ENOSPC or syscall.EIO;
// a block whose write failed must be treated as not written. An index
// outside the volume wraps [blockdiff.ErrOutOfRange]; data of the wrong
// length and size conflicts wrap [blockdiff.ErrGeometry]; writes after
// Commit or Close wrap [blockdiff.ErrClosed]. A failed fsync in Commit is
// final and returned by every later call. A read-only target is refused by
// [OpenFile]. Use [SameFile] to refuse a target that is also the source.
//
// # Concurrency
//
// Every type is safe for concurrent use: WriteBlock, ZeroBlocks, CopyBlock
// and ReadBlock may run from many goroutines on different indices; Commit
// and Close wait for calls in flight. No type starts a goroutine.
package sink
