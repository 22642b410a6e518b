// Package blockdiff owns blockferry's vocabulary: block digests, volume
// geometry, manifests and their binary encoding, the Source and Sink
// interfaces with their optional capabilities, and the change set that
// [Diff] computes between two manifests.
//
// # Glossary
//
//   - block: [Geometry.BlockSize] bytes at offset index*BlockSize; the last
//     block of a volume may be short.
//   - digest: a [Digest], the SHA-256 of a block's bytes. Zero and hole
//     blocks carry the digest of that many zero bytes.
//   - kind: [Data], [Zero] (read and found all zero) or [Hole] (known
//     unallocated). Zero and Hole are the same content when comparing.
//   - manifest: a geometry plus one [Entry] per block. In memory it is a
//     [Manifest]; on disk or on the wire it is the format below, written by
//     [Writer] and read by [Reader] as a stream. Its ID is the SHA-256 of
//     its encoding ([Manifest.ID]).
//   - iterator: an [Iterator] walks a manifest's entries in index order;
//     both [Manifest.Iter] and [*Reader] are iterators, so [Diff] works on
//     two manifests on disk without loading either.
//   - change set: a [ChangeSet], the blocks a target needs written
//     (grouped by digest, so each distinct content is read once) and the
//     runs it needs zeroed, to turn base into target.
//
// # Manifest format
//
// Version 1. Integers are little-endian. Offsets are in bytes. A file or
// stream is recognised as a manifest by its first [ManifestPrefixLen]
// bytes, the magic ([IsManifest]).
//
//	header
//	  0   8  magic 0x89 'B' 'F' 'M' '\r' '\n' 0x1a '\n'
//	  8   2  format version, 1
//	 10   2  flags, 0 (any other value is rejected)
//	 12   4  block size, a power of two from 4 KiB to 16 MiB
//	 16   8  volume size in bytes, at most 2^62
//	 24   8  block count, ceil(volume size / block size) (a check)
//	 32   2  origin length L, at most 4096
//	 34   L  origin, UTF-8 ([Manifest.Origin])
//	body: chunks, then an end marker
//	      4  chunk length C, 1 to 1,057,792; 0 is the end marker
//	      C  one or more zstd frames decoding to 1 to 1 MiB of records
//	trailer
//	     32  SHA-256 of every byte before the trailer
//
// The records of all chunks, in order, describe the blocks from index 0
// up; a record never spans two chunks. A record is
//
//	1 byte   kind: 0 data, 1 zero, 2 hole
//	uvarint  run length R >= 1 (at most 4096 for data)
//	R*32     for data only: the digests of the R blocks, in index order
//
// Together the runs cover exactly block count blocks. The writer emits
// zero and hole runs at full length, cuts data runs at 4096 blocks and
// closes a chunk once its records reach 128 KiB, with zstd's fastest
// level, so the encoding of a manifest is deterministic and its memory
// bounded: about 1 MiB to write or read, whatever the volume size. A
// 64 TiB volume of 512 KiB blocks, 134 million blocks, is a 4 GiB digest
// list that streams through that window. The ID of a manifest is the
// SHA-256 of the whole encoding, trailer included, so it equals
// `sha256sum` of a manifest file. The encoding, and so the ID, is stable
// for a given build; a zstd library that compresses differently would
// change the IDs of newly written manifests (the golden test in testdata/
// catches that), while every version-1 manifest stays readable.
//
// # Errors
//
// Errors are lowercase, prefixed "blockdiff: ", and wrap the sentinels of
// this package; test them with [errors.Is]. A truncated or corrupt
// manifest gives [ErrCorrupt] with the byte offset and what to do; block
// sizes that do not match give [ErrGeometry]; an index outside the volume
// or out of order gives [ErrOutOfRange]; a missing manifest file gives
// [ErrNotFound]. A failure at one block of a Source or Sink is a
// [*BlockError]. [Writer] and [Reader] keep their first error and return it
// from every later call.
//
// # Concurrency
//
// A [Manifest] allows concurrent Set calls on different indices (see
// [Manifest.Set]) and concurrent reads. [Writer], [Reader] and the
// iterators are for one goroutine. A [ChangeSet] is safe for concurrent
// reads (Groups, ZeroRuns, Len) once [Diff] returned, but [ChangeSet.FindLocal]
// must not run concurrently with them. Source and Sink implementations
// document their own rules; ReadBlock is always safe for concurrent use.
// Nothing in this package starts a goroutine.
package blockdiff
