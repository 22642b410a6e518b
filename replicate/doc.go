// Package replicate owns the replication engine: it plans what changed
// between a source volume and a target, moves only that through bounded
// workers, journals progress so that an interrupted run resumes, verifies
// what it wrote, and commits the target with its new manifest.
//
// # Glossary
//
//   - base: the manifest of what the target held before the run
//     ([Options.Base]), usually the [Result.Manifest] of the previous run.
//   - plan: how the run learns what changed, tried in this order
//     (see [PlanKind]): the source lists its own changes since
//     Base.Origin ([blockdiff.ChangeLister]); the source's digests are known
//     ([blockdiff.Manifester]) and diffed against the base without reading;
//     the source is hashed and compared with the base in one streaming pass;
//     without a base, a readable target is hashed first (holes not read)
//     and then diffed against the source's manifest when the source has one
//     (no source block is read unless it changed, as in the manifest plan),
//     or the source streamed against it; otherwise a full copy.
//   - hole: a block the source reports as unallocated ([blockdiff.Extenter]);
//     holes are never read.
//   - dedupe: in the manifest plans (manifest, live-manifest) each distinct changed content is read
//     once and written from the buffer in hand to every index that needs it
//     (Stats.Deduplicated counts the extra indices); when the sink is a
//     [blockdiff.Copier] and an unchanged block already holds the content,
//     the sink copies it locally instead (Stats.CopiedLocal); when the sink
//     is a [blockdiff.Haser] and [blockdiff.Referencer] (a store) that
//     already holds the content, it is recorded by reference without being
//     read (Stats.Referenced). Streaming plans read every block anyway and
//     write it from the buffer in hand; they do not dedupe within the run,
//     but when the sink is a store they ask it about the changed digests
//     of each task (up to [hashing.Lanes] consecutive blocks) with one
//     HasDigests call and record the contents it holds by reference
//     instead of sending them (Stats.Referenced).
//   - zero policy: which zero blocks a full copy may leave out
//     ([ZeroPolicy]); the safe default zeroes them unless the sink reports
//     [UnwrittenZero].
//   - journal: a file recording completed blocks ([Options.Journal]).
//
// # Resume
//
// With [Options.Journal] set, every completed block (written, zeroed,
// copied or found unchanged) is appended to the journal with its resulting
// kind and digest, each record closed by a CRC so that a torn tail left by
// a kill is ignored. Each record is written at once, so a killed process
// loses none, and records are fsynced every 256 blocks or every second.
// When the sink is a [Syncer], the sink is synced before each journal
// fsync and a marker then covers the records before it; records after the
// last marker are trusted only in the same boot of the machine (Linux
// boot_id), where the page cache still holds their data, and dropped after
// a reboot, so the journal never claims a block a power loss could undo.
// Without a syncing sink, after a power loss the journal may name up to a
// second of blocks whose data never reached the disk: after a crash of the
// machine, resume with [VerifyAll], or use a syncing sink.
// The journal's header names the plan: plan kind, source and target
// IDs ([Identifier], or the path of a file adapter), the base manifest ID,
// the source geometry and a source fingerprint ([Fingerprinter], or a file
// source's size and mtime). A later Run with the same arguments skips what
// the journal lists and finishes the rest; a journal for another plan is
// refused with [ErrJournalMismatch] and left alone. On success the journal
// is removed; so it is when verification fails or the source changed
// during the copy, since the next run must start over. Without a
// fingerprint, a source changed between the runs cannot be told apart;
// give one.
//
// # Errors
//
// A failure at one block is returned as a *[blockdiff.BlockError] naming the
// index, the operation and the side ("source", "sink", "target"), wrapping
// the cause (errors.Is(err, syscall.ENOSPC) works). Mismatches found by
// verification wrap [blockdiff.ErrChecksum]. Geometry problems wrap
// [blockdiff.ErrGeometry]. Run also returns [ErrJournalMismatch],
// [ErrSameVolume] and [ErrSourceChanged]. The first error wins; the run
// stops, and nothing is committed.
//
// # Concurrency
//
// Run and Verify each use one errgroup: a producer, Options.Concurrency
// workers and a single collector; no goroutine outlives the call. There
// are min(Concurrency, MaxInFlight/BlockSize) workers (at least one). Each
// holds a slab of up to [hashing.Lanes] buffers from a fixed pool, as many
// as MaxInFlight leaves room for, reads that many consecutive blocks and
// hashes them side by side with one [hashing.SumBatch]; so at most
// max(1, MaxInFlight/BlockSize) blocks are in memory, and the steady state
// does not allocate per block. Cancelling ctx
// stops the run and returns ctx's error. Progress callbacks run on the
// collector goroutine. Source and sink must be safe for concurrent
// ReadBlock and WriteBlock on different indices, as [blockdiff.Source] and
// [blockdiff.Sink] require.
package replicate
