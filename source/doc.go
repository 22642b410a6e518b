// Package source owns the standard-library [blockdiff.Source] adapters:
// regular files and disk images (sparse-aware), block devices, and memory.
//
// Glossary:
//   - [File]: a file or block device opened with [OpenFile] and read with
//     pread, one block per call. Its size is fixed at open.
//   - hole: a run of a sparse file with no storage behind it, found with
//     SEEK_DATA/SEEK_HOLE and reported through [File.Extents] so the
//     engine never reads it. Block devices report no holes.
//   - direct I/O: [Options.Direct] opens with O_DIRECT so a full-disk read
//     does not flush the page cache; reads then go through aligned
//     internal buffers.
//   - [Memory] and [SparseMemory]: in-memory sources for tests and
//     examples; SparseMemory also declares holes.
//
// # Errors
//
// Errors are prefixed "source:" and name the path. A failure at a block is
// a [blockdiff.BlockError] (Side "source", Op "read") wrapping the OS error.
// An index outside the volume wraps [blockdiff.ErrOutOfRange]; a missing
// file wraps [blockdiff.ErrNotFound]; a read after Close wraps
// [blockdiff.ErrClosed]; a bad block size wraps [blockdiff.ErrGeometry]. A
// file that shrank or was modified after open wraps [ErrChanged], from
// ReadBlock when it is found short and from [File.Changed], which an engine
// calls after a copy to refuse a torn result.
//
// # Concurrency
//
// Every type is safe for concurrent use: ReadBlock and Extents may run from
// many goroutines at once. No type starts a goroutine.
package source
