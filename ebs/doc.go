// Package ebs owns blockferry's AWS EBS adapter: snapshots read as a
// [blockdiff.Source] and written as a [blockdiff.Sink] through the EBS direct
// APIs, the EC2 and Storage Gateway calls that take snapshots, and the
// waits for them to complete.
//
// Glossary:
//
//   - snapshot: a row of 512 KiB blocks ([BlockSize]) of a VolumeSize GiB
//     volume, pending while it is written and readable once completed.
//   - listed block: a block ListSnapshotBlocks returns (written in the
//     snapshot or its parent chain). Every other block is a hole: [Source]
//     reads it as zeros without a request and leaves it out of
//     [Source.Extents].
//   - block token: the opaque token GetSnapshotBlock needs. [Source] lists
//     tokens lazily, per window of SourceOptions.PageSize blocks, keeping a
//     few windows ([SourceOptions.TokenWindows]); an expired or refused
//     token (INVALID_BLOCK_TOKEN) is renewed by listing the window again, a
//     bounded number of times.
//   - lineage: snapshots linked by ParentSnapshotId. [Source.ChangesSince]
//     lists the blocks that differ from an earlier snapshot of the lineage
//     (ListChangedBlocks), which is how replicate's change-list plan copies
//     only what changed, also across regions: the target's base manifest
//     names its source version in Manifest.Origin ("ebs:snap-…").
//   - LINEAR checksum: SHA-256 over the raw digests of the blocks put to a
//     snapshot, in index order ([hashing.Linear]), sent with their count in
//     CompleteSnapshot. [Sink] computes it at Commit from the written-block
//     bitset and the manifest it is given, so it holds no digest per block.
//   - state file: [SinkOptions.StatePath], the pending snapshot's id, client
//     token and the blocks put, fsynced by [Sink.Sync] (which replicate calls
//     before each journal fsync), so that a restarted copy continues the
//     same pending snapshot.
//   - set: a crash-consistent group of snapshots ([SnapshotInstance],
//     [SnapshotGatewayVolume]) and its replication record ([ReplicateSet],
//     [Set.Save]); a set counts as replicated only when every volume is.
//
// The adapter calls the SDK through narrow interfaces ([EBSAPI], [EC2API],
// [GatewayAPI]) that *ebs.Client, *ec2.Client and *storagegateway.Client
// satisfy; [NewClients] builds them from the default configuration chain
// with [NewRetryer]'s policy. Locations for a CLI: a snapshot id opened with
// [OpenSnapshot] as source, and [NewSnapshot] with a size (and optionally a
// parent, a KMS key, tags, a description) as sink.
//
// Zero blocks follow docs/ebs-direct-api.md §5.4 and §5.9: [Sink.UnwrittenZero]
// is true only for an unencrypted snapshot without parent, so replicate's
// default zero policy skips zero blocks only there. An encrypted snapshot
// gets written zeros; an incremental snapshot gets a written zero block
// wherever its parent held data that is now zero (replicate zeroes the
// blocks its base manifest shows as data).
//
// Choices where the spec leaves room, and departures from it:
//   - The short last block of a volume whose size is not a multiple of
//     512 KiB is zero-padded and hashed again (as coldsnap does); the
//     padded digest goes into the LINEAR checksum. [SourceOptions.Size]
//     reads such a volume back at its own size.
//   - A resumed sink checks that the recorded snapshot is still pending
//     with EC2 DescribeSnapshots, or, without an EC2 client, by replaying
//     StartSnapshot with the recorded client token (§5.10 says the same
//     snapshot comes back; its Status is taken as current, which the spec
//     does not state). A snapshot that can no longer be written makes the
//     sink start a new one ([Sink.Restarted]); the caller must then drop
//     its replication journal, which names the old snapshot.
//   - CompleteSnapshot always carries the LINEAR checksum, even for zero
//     blocks put (the checksum of empty input, §5.8 leaves it open).
//   - The SDK's client-side retry quota is disabled ([NewRetryer]):
//     per-snapshot throttling is expected during a copy and must not end
//     it. ConcurrentLimitExceededException and ValidationException "Failed
//     to read block data" are retried, as the EBS documentation asks.
//   - [Source] with [SourceOptions.BlockSize] below 512 KiB (to match
//     another volume's block size) fetches whole EBS blocks and keeps the
//     last few.
//
// # Errors
//
// Errors are prefixed "ebs:" and name the operation and the snapshot. SDK
// errors stay in the chain (errors.As with the types of
// aws-sdk-go-v2/service/ebs/types works) beside the blockdiff sentinels:
// an unknown snapshot wraps [blockdiff.ErrNotFound]; a block whose body
// does not match its x-amz-Checksum wraps [blockdiff.ErrChecksum]; a
// change list against a snapshot of another lineage, an unknown one or a
// non-EBS ID wraps [blockdiff.ErrUnrelated]; reads past the volume wrap
// [blockdiff.ErrOutOfRange]; writes after Commit or Close wrap
// [blockdiff.ErrClosed]. Per-block failures are [*blockdiff.BlockError].
// Throttling and server errors are retried by the SDK's retryer and are
// seen only once the attempts are spent. A snapshot that ends in error after
// CompleteSnapshot gives an error naming its state message.
//
// # Concurrency
//
// [Source.ReadBlock] and [Sink.WriteBlock] are safe for concurrent use
// (EBS wants many requests in flight: replicate's Concurrency of 16–64).
// A Source's token windows are shared: concurrent reads of one window wait
// for a single listing. [Sink.Sync] is safe beside WriteBlock (replicate
// calls it from its journal goroutine); Commit and Close must not run
// concurrently with WriteBlock. [ReplicateSet] copies one volume at a time.
// No function starts a goroutine that outlives it.
package ebs
