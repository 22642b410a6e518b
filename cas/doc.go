// Package cas owns the content-addressed store: volume blocks kept once
// each as chunks named by their SHA-256, zstd-compressed, with each backup
// a named snapshot (a manifest) written only after all its chunks exist; a
// restore [Snapshot] is a [blockdiff.Source] and a backup [SnapshotSink] a
// [blockdiff.Sink], on any [Backend] (a local directory with [NewDir], memory
// with [NewMemory], S3 with package cas/s3).
//
// # Glossary
//
//   - chunk: the stored form of one distinct non-zero block, named by the
//     block's digest. Zero blocks are never stored.
//   - snapshot: a name, a time, optional tags, and the ID of a manifest.
//   - manifest: the volume's geometry and one digest per block, in the
//     blockdiff binary encoding, stored under its own SHA-256 (its ID), so
//     unchanged volumes share one manifest object.
//   - lock marker: a small object under locks/ saying a backup or a gc is
//     running; markers older than [Options.StaleAfter] are ignored.
//   - epoch: a random value that gc changes before it deletes anything; it
//     names the digest cache and lets a backup detect a gc it overlapped.
//
// # Layout
//
// Keys, the same on every backend (the directory backend maps key k to the
// file ROOT/k, the S3 backend to PREFIX/k):
//
//	config                        {"format":"blockferry-cas","version":1,"id":…}
//	chunks/ab/cd/abcd…(64 hex)    one chunk; fan-out by the first two bytes
//	manifests/<64 hex>            an encoded manifest, named by its SHA-256
//	snapshots/<name>              JSON: name, time, tags, geometry, manifest ID, counts
//	locks/backup-<rand>           a backup in progress
//	locks/gc-<rand>               a gc in progress
//	epoch                         the gc epoch (absent until a gc deletes)
//
// # Chunk format
//
// One header byte, then the payload: 0 means the block's bytes follow
// raw; 1 means one zstd frame follows (klauspost/compress, level
// [Options.CompressionLevel], no frame CRC since the digest covers it). A
// block is stored raw when compression does not make it smaller. Every
// read decodes the chunk and hashes the result: a chunk that is corrupt,
// truncated, of another block, or of the wrong length is an error wrapping
// [blockdiff.ErrChecksum] that names the digest.
//
// # Backup
//
// [Store.NewSnapshotSink] writes a backup lock marker and reads the epoch.
// A new snapshot reads every block it is not given as zeros, so the sink
// reports [SnapshotSink.UnwrittenZero] and the replication engine leaves
// a full copy's zero blocks out instead of sending them; a zero block that
// is sent is recorded as zero and never stored.
// A block's chunk is sent only when its digest is not known to be stored;
// knowledge comes from, cheapest first: chunks this sink stored, the
// digests of [SnapshotOptions.Parent], the local digest cache
// ([Options.CacheDir], one file per store and epoch), a listing of the
// chunk keys when the backup starts (up to [Options.ListChunks] keys),
// batched [SnapshotSink.HasDigests] answers, and one existence request
// per unknown digest before sending it. Absence is trusted more loosely
// than presence, since sending a chunk the store already has only rewrites
// the same bytes under the same key: when the starting listing was
// complete (a small or empty store), every digest it did not name counts
// as missing without a request, even if a concurrent backup stores it
// meanwhile; and a digest HasDigests just found missing (the last 4096
// are remembered) is sent without asking again. Presence always comes
// from the store itself, under the gc rule below, and Commit asks the
// backend about every digest it does not know to be present.
// [SnapshotSink.Commit] checks that every data digest of the manifest is
// stored, syncs the backend, checks the epoch is
// unchanged, writes the manifest, then the snapshot, last. A crash at any
// point leaves at most unreferenced chunks, never a snapshot pointing at
// a chunk that is missing.
//
// # GC rule
//
// [Store.GC] deletes chunks and manifests no snapshot references and that
// are older than [GCOptions.Grace] (default one hour). It is exclusive with
// backups through lock markers: each side first writes its own marker and
// then lists the other side's; gc gives up with [ErrBusy] if it sees a
// fresh backup marker, and a backup that sees a fresh gc marker does the
// same. Since every backend is read-after-write consistent (a directory;
// S3 since 2020; MinIO), at least one of two racing parties sees the
// other, so a gc never runs while a backup has chunks uploaded but no
// snapshot written. A backup refreshes its marker every StaleAfter/4 while
// it is used; gc refreshes its own while deleting and stops when it could
// not. Should a stalled backup's marker go stale anyway, gc changes the
// epoch before deleting, and that backup's Commit sees the change and fails
// with [ErrBusy] instead of writing a snapshot. The epoch change also
// invalidates every digest cache, which might otherwise name deleted
// chunks. Staleness compares the backend's modification times with the
// local clock, so clocks must agree to well within StaleAfter.
//
// On a directory backend gc also removes temporary ".tmp-*" files older
// than the grace period, left by writers that crashed mid-Put.
//
// [Store.Verify] checks that every referenced chunk exists and, with
// readData, reads and hashes each one.
//
// # Errors
//
// Errors carry the package prefix "cas:" and wrap the blockdiff sentinels:
// [blockdiff.ErrNotFound] for a missing snapshot, manifest or chunk (the
// backend's own error stays in the chain), [blockdiff.ErrChecksum] for a
// chunk or manifest whose content does not match its name,
// [blockdiff.ErrCorrupt] for an unreadable snapshot or config object,
// [blockdiff.ErrGeometry], [blockdiff.ErrOutOfRange] and
// [blockdiff.ErrClosed]; plus [ErrExists] (snapshot name taken) and [ErrBusy]
// (a conflicting backup or gc). Per-block failures of a [Snapshot] or
// [SnapshotSink] are [*blockdiff.BlockError].
//
// # Concurrency
//
// A [Store], a [Snapshot] and the block methods of a [SnapshotSink]
// (WriteBlock, WriteRef, HasDigests) are safe for concurrent use; concurrent
// writes of the same content send it once (singleflight). Calls that make
// many backend requests run at most [Options.Concurrency] at once on
// errgroups that end before the call returns. Several processes may back
// up into one store at once; only gc excludes backups.
package cas
