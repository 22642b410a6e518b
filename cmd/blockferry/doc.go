// Command blockferry is the command line over the blockferry library: it
// hashes volumes into manifests, diffs them, and copies a volume to another
// moving only the blocks whose content changed.
//
// Usage:
//
//	blockferry hash SRC [-o FILE] [--block-size N] [--json]
//	blockferry diff A B [--block-size N] [--json]
//	blockferry inspect MANIFEST [--blocks] [--json]
//	blockferry copy SRC DST [--base MANIFEST] [--journal FILE] [--verify[=all]]
//	                [--concurrency N] [--max-inflight BYTES] [--bwlimit RATE]
//	                [--state-dir DIR] [--block-size N] [--json]
//	                [--parent SNAP-ID] [--size BYTES] [--region R] [--dest-region R]
//	                [--ebs-endpoint URL] [--ec2-endpoint URL] [--dest-*-endpoint URL]
//	                [--tag K=V]... [--description TEXT] [--kms-key ARN] [--retry-mode standard|adaptive]
//	blockferry verify SRC MANIFEST [--json]
//	blockferry snapshot instance INSTANCE-ID | gateway-volume VOLUME-ARN
//	                [--replicate-to ebs:new --dest-region R] [--set FILE] [--json]
//	blockferry snapshot resume --set FILE --replicate-to ebs:new
//	blockferry demo [--keep] [--size BYTES] [--no-ebs]
//	blockferry store ls|gc|verify STORE [--json]
//	blockferry fake-ebs [--listen ADDR]
//	blockferry --version | help [COMMAND]
//
// Flags may come before or after the positional arguments. Every command
// that prints results takes --json (one JSON object on stdout, no progress
// bar) and --quiet. A progress bar is drawn on stderr only when stderr is a
// terminal. Sizes take suffixes: 4096, 512KiB, 64MiB, 100M (binary), 1GB
// (decimal); rates add an optional "/s": 10MB/s.
//
// Try it with no setup:
//
//	go run ./cmd/blockferry demo
//
// # Glossary
//
//   - location: where a volume is. A plain path or file:PATH is a regular
//     file (disk image, read sparse-aware); dev:PATH a block device;
//     cas:DIR[#SNAPSHOT] and s3://BUCKET/PREFIX[#SNAPSHOT] a snapshot in a
//     content-addressed store; ebs:snap-ID a completed EBS snapshot (source)
//     and ebs:new a new one (target). The scheme → adapter table is a
//     literal in location.go. EBS locations take the AWS default chain
//     (credentials, AWS_REGION, AWS_ENDPOINT_URL_EBS/_EC2/_STORAGE_GATEWAY)
//     and the --region/--*-endpoint flags for the source side, --dest-* for
//     the target side, so one copy can go region to region.
//   - EBS state: the manifest of every snapshot a copy writes is saved as
//     ebs_SNAP-ID.bfm in --state-dir (default: the user cache directory,
//     blockferry/ebs). It is the base of a later copy with --parent SNAP-ID
//     (the change-list plan when the source is a later snapshot of the same
//     lineage as that copy's source) and keeps the volume's logical size,
//     since EBS rounds sizes up to whole GiB. With --journal FILE the
//     pending snapshot is recorded in FILE.ebs-state, so a re-run continues
//     it; if it can no longer be written a new one is started and the
//     journal dropped.
//   - manifest: a file (conventionally *.bfm) holding a volume's geometry
//     and one SHA-256 per block. Wherever only digests are needed (diff,
//     verify, copy --base) a manifest stands for the volume. Manifests are
//     recognised by their content (magic bytes), or by the .bfm name so a
//     damaged one is reported rather than hashed as a volume.
//   - backup and restore: "copy SRC cas:DIR#NAME" (or s3://BUCKET/PREFIX#NAME)
//     stores a snapshot, each distinct block once, compressed; "copy
//     cas:DIR#NAME DST" restores it.
//   - base: what the target held before a copy. After a successful copy the
//     target's manifest is saved (DST.bfm, or in --state-dir); the next copy
//     to the same target uses it unless the target was modified after it
//     was saved, so an incremental run reads and hashes only the source.
//
// # Errors
//
// A failure prints one line on stderr, "blockferry: COMMAND: what happened:
// what to do", and exits with status 1; a command-line mistake exits with
// status 2. verify exits with status 1 when any block mismatches, after
// listing the mismatched blocks on stdout. An interrupted copy (SIGINT,
// SIGTERM) stops cleanly; with --journal, running the same command again
// resumes it.
//
// # Concurrency
//
// main turns SIGINT and SIGTERM into a cancelled context passed to run;
// every command stops at the next block boundary. Work inside a command is
// bounded by --concurrency and --max-inflight, as the library documents.
package main
