package ebs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/source"
)

// TestSinkConformance runs blockdifftest's sink suite, reading each
// snapshot back through the Source (a snapshot left pending by Close is
// forced completed first). The fake checks every count and LINEAR
// checksum, so a wrong one fails the read-back.
func TestSinkConformance(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{StrictComplete: true}, fastClient)
	blockdifftest.SinkSuite{
		BlockSize: ebs.BlockSize,
		Open: func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
			s, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, ebs.SinkOptions{Size: g.Size})
			if err != nil {
				t.Fatalf("NewSnapshot: %v", err)
			}
			return s
		},
		ReadBack: func(t *testing.T, s blockdiff.Sink) []byte {
			id := s.(*ebs.Sink).SnapshotID()
			if info, _ := r.srv.Snapshot(id); info.Status == ebsfake.StatusPending && !info.Sealing {
				if err := r.srv.SetState(id, ebsfake.StatusCompleted, ""); err != nil {
					t.Fatal(err)
				}
			}
			if info, _ := r.srv.Snapshot(id); info.Status != ebsfake.StatusCompleted {
				t.Fatalf("snapshot %s is %s (%s), want completed", id, info.Status, info.StatusMessage)
			}
			src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{Size: s.Geometry().Size})
			if err != nil {
				t.Fatalf("OpenSnapshot: %v", err)
			}
			return readAll(t, src)
		},
	}.Run(t)
}

// roundTrip replicates vol into a new snapshot with opts and returns the
// result, the sink and the snapshot read back.
func roundTrip(t *testing.T, r *region, vol []byte, so ebs.SinkOptions, ro replicate.Options) (*replicate.Result, *ebs.Sink, []byte) {
	t.Helper()
	src, err := source.NewMemory(vol, ebs.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	snk, err := ebs.NewSnapshot(r.ctx, r.c.EBS, r.c.EC2, so)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	defer snk.Close()
	res, err := replicate.Run(r.ctx, src, snk, ro)
	if err != nil {
		t.Fatalf("replicate.Run: %v", err)
	}
	back, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, snk.SnapshotID(), ebs.SourceOptions{Size: int64(len(vol))})
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	return res, snk, readAll(t, back)
}

func TestSinkReplicate(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{CompletionDelay: 30 * time.Millisecond}, fastClient)
	g := blockdiff.Geometry{Size: 20*ebs.BlockSize + 1000, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(3, g, 0.3, 0.2)
	zeros := 0
	for i := int64(0); i < g.Blocks(); i++ {
		b := vol[g.Offset(i):min(g.Offset(i+1), g.Size)]
		if bytes.Count(b, []byte{0}) == len(b) {
			zeros++
		}
	}
	if zeros == 0 {
		t.Fatal("test volume has no zero block")
	}
	for _, tc := range []struct {
		name      string
		so        ebs.SinkOptions
		wantZeros bool // zero blocks written
	}{
		{"unencrypted skips zeros", ebs.SinkOptions{Description: "d", Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, false},
		{"encrypted writes zeros", ebs.SinkOptions{Encrypted: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := tc.so
			so.Size, so.WaitTimeout, so.WaitMinDelay, so.WaitMaxDelay = g.Size, 20*time.Second, 5*time.Millisecond, 20*time.Millisecond
			res, snk, got := roundTrip(t, r, vol, so, replicate.Options{Concurrency: 4})
			if d := firstDiff(got, vol, ebs.BlockSize); d != -1 {
				t.Fatalf("read back: block %d differs", d)
			}
			info, _ := r.srv.Snapshot(snk.SnapshotID())
			if info.Status != ebsfake.StatusCompleted {
				t.Fatalf("snapshot status: got %s (%s), want completed", info.Status, info.StatusMessage)
			}
			if info.Description != so.Description || len(info.Tags) != len(so.Tags) || info.Encrypted != so.Encrypted {
				t.Errorf("snapshot: got %+v, want description %q, %d tags, encrypted %v", info, so.Description, len(so.Tags), so.Encrypted)
			}
			wantWritten := int(g.Blocks()) - zeros
			if tc.wantZeros {
				wantWritten = int(g.Blocks())
			}
			if info.WrittenBlocks != wantWritten {
				t.Errorf("blocks put: got %d, want %d (stats %+v)", info.WrittenBlocks, wantWritten, res.Stats)
			}
			if snk.UnwrittenZero() == tc.wantZeros {
				t.Errorf("UnwrittenZero: got %v, want %v", snk.UnwrittenZero(), !tc.wantZeros)
			}
		})
	}
}

// TestSinkIncremental copies a changed volume into a snapshot on the
// first copy's snapshot, with the first run's manifest as base: only the
// changed blocks are put, and blocks that became zero get written zeros.
func TestSinkIncremental(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	g := blockdiff.Geometry{Size: 24 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	v1 := blockdifftest.Volume(4, g, 0, 0)
	res1, s1, _ := roundTrip(t, r, v1, fastSink(g.Size), replicate.Options{})
	v2 := bytes.Clone(v1)
	clear(v2[3*ebs.BlockSize : 5*ebs.BlockSize])                        // 3, 4 become zero
	copy(v2[10*ebs.BlockSize:], bytes.Repeat([]byte{7}, ebs.BlockSize)) // 10 changes
	so := fastSink(g.Size)
	so.ParentSnapshotID = s1.SnapshotID()
	res2, s2, got := roundTrip(t, r, v2, so, replicate.Options{Base: res1.Manifest})
	if d := firstDiff(got, v2, ebs.BlockSize); d != -1 {
		t.Fatalf("read back: block %d differs", d)
	}
	if s2.UnwrittenZero() {
		t.Error("UnwrittenZero of an incremental snapshot: got true, want false")
	}
	info, _ := r.srv.Snapshot(s2.SnapshotID())
	if info.Status != ebsfake.StatusCompleted || info.WrittenBlocks != 3 || info.ParentID != s1.SnapshotID() {
		t.Errorf("incremental snapshot: got %s, %d blocks put, parent %s; want completed, 3, %s (stats %+v)",
			info.Status, info.WrittenBlocks, info.ParentID, s1.SnapshotID(), res2.Stats)
	}
}

// TestSinkResume interrupts a copy with server errors, then runs again with
// the same state file and journal: the same pending snapshot is continued
// and only missing blocks are put; the commit covers both runs.
func TestSinkResume(t *testing.T) {
	co := fastClient
	co.MaxAttempts = 2
	// failAfter > 0: every put after that many (counted from the run's
	// start) fails with 500.
	var failAfter, seen atomic.Int64
	inject := func(c ebsfake.Call) *ebsfake.Fault {
		if c.Op != ebsfake.OpPutSnapshotBlock || failAfter.Load() == 0 {
			return nil
		}
		if seen.Add(1) > failAfter.Load() {
			return &ebsfake.FaultInternal
		}
		return nil
	}
	r := newRegion(t, "us-east-1", ebsfake.Options{StrictComplete: true, Inject: inject}, co)
	g := blockdiff.Geometry{Size: 40*ebs.BlockSize + 4096, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(8, g, 0.1, 0)
	dir := t.TempDir()
	state, journal := filepath.Join(dir, "sink.state"), filepath.Join(dir, "copy.journal")
	src, _ := source.NewMemory(vol, ebs.BlockSize)
	so := fastSink(g.Size)
	so.StatePath = state

	run := func(n int64) (*ebs.Sink, *replicate.Result, error) {
		t.Helper()
		failAfter.Store(n)
		seen.Store(0)
		snk, err := ebs.NewSnapshot(r.ctx, r.c.EBS, r.c.EC2, so)
		if err != nil {
			t.Fatalf("NewSnapshot: %v", err)
		}
		if snk.Restarted() {
			os.Remove(journal)
		}
		res, err := replicate.Run(r.ctx, src, snk, replicate.Options{Journal: journal, Concurrency: 2})
		if cerr := snk.Close(); cerr != nil {
			t.Errorf("Close: %v", cerr)
		}
		return snk, res, err
	}
	s1, _, err := run(15)
	if err == nil {
		t.Fatal("first run: got nil error, want the injected failure")
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("state file after a failed run: %v", err)
	}
	puts := r.srv.Stats().Requests[ebsfake.OpPutSnapshotBlock]
	before, _ := r.srv.Snapshot(s1.SnapshotID())

	s2, res, err := run(0)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !s2.Resumed() || s2.SnapshotID() != s1.SnapshotID() {
		t.Fatalf("second run: resumed %v, snapshot %s; want true, %s", s2.Resumed(), s2.SnapshotID(), s1.SnapshotID())
	}
	if res.Stats.Resumed == 0 {
		t.Errorf("second run resumed no block (stats %+v)", res.Stats)
	}
	after, _ := r.srv.Snapshot(s1.SnapshotID())
	newPuts := r.srv.Stats().Requests[ebsfake.OpPutSnapshotBlock] - puts
	if missing := after.WrittenBlocks - before.WrittenBlocks; newPuts > missing+2 {
		t.Errorf("second run: %d puts for %d missing blocks", newPuts, missing)
	}
	if after.Status != ebsfake.StatusCompleted {
		t.Fatalf("snapshot: got %s (%s), want completed", after.Status, after.StatusMessage)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Commit: got %v, want it removed", err)
	}
	back, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, s2.SnapshotID(), ebs.SourceOptions{Size: g.Size})
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(readAll(t, back), vol, ebs.BlockSize); d != -1 {
		t.Fatalf("read back: block %d differs", d)
	}

	t.Run("restart when the snapshot is gone", func(t *testing.T) {
		s3, _, err := run(10)
		if err == nil {
			t.Fatal("got nil error, want the injected failure")
		}
		if err := r.srv.SetState(s3.SnapshotID(), ebsfake.StatusError, "timed out"); err != nil {
			t.Fatal(err)
		}
		s4, _, err := run(0)
		if err != nil {
			t.Fatalf("run after the snapshot failed: %v", err)
		}
		if !s4.Restarted() || s4.Resumed() || s4.SnapshotID() == s3.SnapshotID() {
			t.Errorf("got restarted %v, resumed %v, snapshot %s (old %s); want a new snapshot", s4.Restarted(), s4.Resumed(), s4.SnapshotID(), s3.SnapshotID())
		}
		if info, _ := r.srv.Snapshot(s4.SnapshotID()); info.Status != ebsfake.StatusCompleted {
			t.Errorf("new snapshot: got %s (%s), want completed", info.Status, info.StatusMessage)
		}
	})
	t.Run("state of another request refused", func(t *testing.T) {
		if err := os.WriteFile(state, []byte(`{"format":"blockferry-ebs-sink/1","snapshot_id":"snap-0123456789abcdef0","size":5}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ebs.NewSnapshot(r.ctx, r.c.EBS, r.c.EC2, so)
		if err == nil || !strings.Contains(err.Error(), "another snapshot request") {
			t.Errorf("NewSnapshot: got %v, want a refusal naming another snapshot request", err)
		}
	})
}

func TestSinkOptionsRefused(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	for _, o := range []ebs.SinkOptions{
		{},
		{Size: 65537 * ebs.GiB},
		{Size: ebs.GiB, Encrypted: true, ParentSnapshotID: "snap-0123456789abcdef0"},
		{Size: ebs.GiB, KMSKeyARN: "arn:aws:kms:us-east-1:111122223333:key/x"},
		{Size: ebs.GiB, Timeout: time.Minute},
	} {
		if _, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, o); err == nil {
			t.Errorf("NewSnapshot(%+v): got nil error, want one", o)
		}
	}
	_, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, ebs.SinkOptions{Size: ebs.GiB, ParentSnapshotID: "snap-0123456789abcdef0"})
	if !errors.Is(err, blockdiff.ErrNotFound) {
		t.Errorf("NewSnapshot on an unknown parent: got %v, want ErrNotFound", err)
	}
	_ = context.Background
}

// TestSinkResumeWithoutEC2 continues a pending snapshot found by replaying
// StartSnapshot with the recorded client token, and checks that the state
// file's records survive a torn last line.
func TestSinkResumeWithoutEC2(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{StrictComplete: true}, fastClient)
	g := blockdiff.Geometry{Size: 3*ebs.BlockSize + 10, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(41, g, 0, 0)
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	so := ebs.SinkOptions{Size: g.Size, StatePath: filepath.Join(t.TempDir(), "state"), ClientToken: "token-1"}
	write := func(s *ebs.Sink, i int64) {
		t.Helper()
		b := vol[g.Offset(i):min(g.Offset(i+1), g.Size)]
		d := blockdiff.Digest(sha256.Sum256(b))
		if err := s.WriteBlock(r.ctx, i, b, d); err != nil {
			t.Fatalf("WriteBlock(%d): %v", i, err)
		}
		if err := m.Set(i, blockdiff.Data, d); err != nil {
			t.Fatal(err)
		}
	}
	s1, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, so)
	if err != nil {
		t.Fatal(err)
	}
	write(s1, 0)
	write(s1, 3) // the short last block, padded
	if err := s1.Sync(r.ctx); err != nil {
		t.Fatal(err)
	}
	write(s1, 1) // put but never synced: the next run does not know it
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(so.StatePath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("p 2") // torn record
	f.Close()

	s2, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, so)
	if err != nil {
		t.Fatalf("NewSnapshot again: %v", err)
	}
	if !s2.Resumed() || s2.SnapshotID() != s1.SnapshotID() {
		t.Fatalf("got resumed %v, snapshot %s; want true, %s", s2.Resumed(), s2.SnapshotID(), s1.SnapshotID())
	}
	write(s2, 1)
	write(s2, 2)
	if err := s2.Commit(r.ctx, m); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if info, _ := r.srv.Snapshot(s2.SnapshotID()); info.Status != ebsfake.StatusCompleted || info.WrittenBlocks != 4 {
		t.Fatalf("snapshot: got %s (%s) with %d blocks, want completed with 4", info.Status, info.StatusMessage, info.WrittenBlocks)
	}
	if err := s2.WriteBlock(r.ctx, 0, vol[:ebs.BlockSize], blockdiff.Digest{}); !errors.Is(err, blockdiff.ErrClosed) {
		t.Errorf("WriteBlock after Commit: got %v, want ErrClosed", err)
	}
	back, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, s2.SnapshotID(), ebs.SourceOptions{Size: g.Size})
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(readAll(t, back), vol, ebs.BlockSize); d != -1 {
		t.Fatalf("read back: block %d differs", d)
	}
	// The completed snapshot's token cannot be continued.
	if err := os.WriteFile(so.StatePath, []byte(`{"format":"blockferry-ebs-sink/1","snapshot_id":"`+s2.SnapshotID()+`","client_token":"token-1","size":`+strconv.FormatInt(g.Size, 10)+`,"volume_size_gib":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, so); err == nil || !strings.Contains(err.Error(), "no longer pending") {
		t.Errorf("NewSnapshot on a completed snapshot's token: got %v, want a no-longer-pending error", err)
	}
}

// TestSinkEncryptionByDefault: an account that encrypts every snapshot
// makes the sink write zeros although Encrypted was not asked for.
func TestSinkEncryptionByDefault(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{EncryptionByDefault: true}, fastClient)
	s, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, ebs.SinkOptions{Size: ebs.GiB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if info, _ := r.srv.Snapshot(s.SnapshotID()); !info.Encrypted {
		t.Fatalf("the fake did not encrypt by default: %+v", info)
	}
	if s.UnwrittenZero() {
		t.Error("UnwrittenZero of a snapshot encrypted by default: got true, want false")
	}
}
