// Package ebsfake is a faithful fake of the AWS EBS direct APIs (and the few EC2 and Storage
// Gateway snapshot calls around them) as an [http.Handler], for tests, demos and users' own
// tests.
//
// It follows docs/ebs-direct-api.md (the spec) and is held to the real clients: every
// conformance check of its §9 runs through aws-sdk-go-v2/service/ebs and through boto3
// (testdata/conformance.py). Start it with [New], serve it with [net/http/httptest] on
// 127.0.0.1 and point a client's endpoint at it (Go: ebs.Options.BaseEndpoint; boto3:
// endpoint_url). Signatures are not checked.
//
// Glossary:
//
//   - snapshot: a row of 512 KiB blocks ([BlockSize]) of a VolumeSize GiB volume, in status
//     pending (writable), completed (readable) or error.
//   - lineage: snapshots linked by ParentSnapshotId. A child reads as its parent with its own
//     writes on top; ListSnapshotBlocks lists inherited blocks too.
//   - generation: a Server-wide number given to every stored block. Block tokens are bound to
//     (snapshot, index, generation), and ListChangedBlocks reports an index as changed when
//     the two snapshots see different generations there (a write, not a content compare).
//   - block token / page token: Base64 strings sealed with an HMAC ([Options.TokenKey]);
//     block tokens expire after 7 days, page tokens after 60 minutes, on [Options.Clock].
//   - LINEAR checksum: SHA-256 over the raw 32-byte SHA-256 digests of the blocks written to a
//     snapshot, in ascending index order (§5.8); checked by CompleteSnapshot when sent.
//   - sealing: CompleteSnapshot answers 202 pending; the snapshot becomes completed (or error
//     on a bad count or checksum) [Options.CompletionDelay] later.
//   - fault: an injected failure ([Rule], [Fault], [Options.Inject]): an error response of any
//     type and status, or a dropped connection.
//
// Time-driven changes (Timeout, sealing, token expiry, throttle buckets) are evaluated on
// [Options.Clock] whenever a request or helper observes the snapshot; no goroutine runs in
// the background, so a manual clock makes them deterministic.
//
// Block data lives in memory, or with [Options.DataDir] in one append-only log file
// (ebsfake-*.blocks, removed by [Server.Close]). All-zero blocks are listed like any written
// block but never stored.
//
// The EC2 query-protocol calls CreateSnapshot, CreateSnapshots and DescribeSnapshots (XML,
// §6.1) and Storage Gateway CreateSnapshot (JSON 1.1, §6.2) are served at POST /, chosen by
// X-Amz-Target or the form's Action. They snapshot volumes registered with
// [Server.AddVolume]; such a snapshot seals on its own after [Options.CompletionDelay] and is
// incremental on the snapshot its volume was restored from. DescribeSnapshots also reports
// snapshots made through the direct APIs, so the EC2 SnapshotCompleted waiter works on them.
//
// Inspection and seeding helpers for tests: [Server.Snapshot], [Server.Snapshots],
// [Server.SetState], [Server.ReadBlock], [Server.WriteBlock], [Server.Stats],
// [Server.AddFault].
//
// Choices where the spec is UNVERIFIED follow its recommendations (§4.3, §5): a wrong
// ChangedBlocksCount or checksum ends in error ([Options.StrictComplete] fails synchronously),
// ListChangedBlocks without firstSnapshotId lists the second snapshot's blocks
// ([Options.StrictChangedBlocks] refuses), maxResults defaults to 10000, old block tokens
// stay valid until they expire, client tokens are remembered for 24 hours. Departures and
// additions: a repeated CompleteSnapshot on a sealing or completed snapshot answers 202 with
// its current status (so client retries are harmless); a child's VolumeSize must equal its
// parent's; KmsKeyArn without Encrypted is refused; account-level throttling uses the
// modeled reason ACCOUNT_THROTTLED.
//
// # Errors
//
// Error responses have the shape of §4: the modeled HTTP status, x-amzn-ErrorType,
// Content-Type application/json and a body {"__type", "Message", "Reason"} (Reason only where
// the type models one). Every response carries x-amzn-RequestId. The error type names are
// exported as constants ([ErrValidation], ...), and so are the reasons used. Go helpers
// return errors prefixed "ebsfake:"; an unknown snapshot id wraps [ErrNotFound].
//
// # Concurrency
//
// A [Server] is safe for concurrent use by many clients; one mutex guards snapshot state and
// block I/O happens outside it. Concurrent puts to the same index of a snapshot are refused
// with CONFLICTING_BLOCK_UPDATE. Servers share nothing, so one per region can run at once.
// ServeHTTP starts no goroutines.
package ebsfake
