// Package hashing owns the SHA-256 hot path of blockferry: the digest of one
// block and of batches of blocks on the fastest engine the CPU offers, the
// zero-block check and digests, and the EBS LINEAR aggregate checksum.
//
// It mirrors crypto/sha256 ([Sum256], [New]) and adds one batch call,
// [SumBatch], which fills a caller-owned slice of digests without
// allocating. The parallel hashing of a whole volume into a manifest lives
// in blockdiff (blockdiff.HashSource), built on these calls.
//
// # Glossary
//
//   - digest: a [Size]-byte SHA-256. Every engine gives exactly the digest
//     crypto/sha256 gives, for every input length.
//   - engine: an [Engine], one implementation of SHA-256: [Stdlib]
//     (crypto/sha256, which uses SHA-NI on amd64 by itself), [SHANI]
//     (github.com/minio/sha256-simd's Intel SHA path) and [AVX512]
//     (sha256-simd's 16-lane multi-buffer kernel, fed directly by
//     [SumBatch]). [Engines] lists those this CPU runs.
//   - dispatch: the choice of engine for the package-level functions, made
//     once from the CPU's features ([Default]); an engine is chosen only if
//     it is measured no slower than crypto/sha256. Build with the purego
//     tag to force crypto/sha256.
//   - lanes: how many messages one batch pass hashes side by side
//     ([Lanes]): 16 with AVX-512, 2 with the 2-way SHA-NI kernel,
//     otherwise 1.
//   - zero block: a block whose bytes are all zero. [IsZero] detects one at
//     memory speed; [ZeroDigest] returns its digest for any length, hashed
//     once per length.
//   - LINEAR checksum: the EBS CompleteSnapshot aggregate, SHA-256 over the
//     raw block digests in index order, computed by [Linear].
//
// # Errors
//
// Nothing in this package returns an error. [SumBatch] and
// [Engine.SumBatch] panic, like an out-of-range slice index, when dst is
// shorter than blocks. An [Engine] this CPU cannot run falls back to
// crypto/sha256 instead of faulting.
//
// # Concurrency
//
// [Sum256], [SumBatch], [IsZero], [ZeroDigest] and the [Engine] methods are
// safe for concurrent use and start no goroutines. A hash.Hash from [New]
// and a [Linear] are not safe for concurrent use, like crypto/sha256's.
package hashing
