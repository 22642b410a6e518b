// Package blockdifftest owns the tools for testing any [blockdiff.Source]
// or [blockdiff.Sink]: conformance suites, fault-injecting wrappers and
// deterministic volumes.
//
// Glossary:
//   - suite: [TestSource] and [TestSink] (configurable through
//     [SinkSuite]) run the same checks on every adapter, as testing/fstest
//     does for file systems. Call them from the adapter's own tests with
//     an opener that builds the adapter over the given content.
//   - fault wrapper: [FaultySource] and [FaultySink] wrap a real adapter
//     and fail, shorten, corrupt or delay chosen calls (by call number or
//     block index), to test how callers handle errors, resume and verify.
//   - volume: [Volume] and [WriteVolume] generate the same bytes from a seed,
//     with chosen fractions of zero and duplicate blocks; [Mutate] and
//     [MutateAt] turn one into a later version.
//   - loop device: [LoopDevice] and [ReadOnlyLoopDevice] put a file behind a
//     real block device for device code paths, skipping (failing under
//     CI=true) where losetup or root is missing.
//
// # Errors
//
// The suites report through the *testing.T they are given. Injected
// errors are wrapped in a [blockdiff.BlockError] naming the block and wrap
// both [ErrInjected] and the error given to FailCall (and friends), so
// errors.Is finds syscall.EIO or syscall.ENOSPC through them. Volume,
// Mutate and WriteVolume panic on invalid geometry or fractions: those are
// bugs in the test that calls them.
//
// # Concurrency
//
// The wrappers are safe for concurrent use, as the contracts of the
// interfaces they wrap require; call numbers count calls in the order the
// wrapper sees them, so under concurrency "the n-th call" is whichever
// arrives n-th. The suites read and write concurrently and so should run
// under -race.
package blockdifftest
