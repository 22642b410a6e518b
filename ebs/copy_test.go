package ebs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
)

// copySnapshot replicates snapshot id of region from into a new snapshot of
// region to, on parent with base when given.
func copySnapshot(t *testing.T, from, to *region, id string, size int64, parent string, base *blockdiff.Manifest) (*replicate.Result, string, error) {
	t.Helper()
	src, err := ebs.OpenSnapshot(from.ctx, from.c.EBS, id, ebs.SourceOptions{Size: size})
	if err != nil {
		return nil, "", err
	}
	so := fastSink(size)
	so.ParentSnapshotID = parent
	snk, err := ebs.NewSnapshot(to.ctx, to.c.EBS, to.c.EC2, so)
	if err != nil {
		return nil, "", err
	}
	defer snk.Close()
	res, err := replicate.Run(to.ctx, src, snk, replicate.Options{Base: base, Concurrency: 4})
	return res, snk.SnapshotID(), err
}

// TestCrossRegionIncremental: region A holds parent P and child C; region B
// holds P', a copy of P. Copying C into B on P', with P's copy manifest as
// base, lists the changes P→C in A, reads only those blocks, and yields a
// snapshot equal to C (blocks C zeroed included).
func TestCrossRegionIncremental(t *testing.T) {
	a := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	b := newRegion(t, "eu-west-1", ebsfake.Options{StrictComplete: true}, fastClient)
	const n = 40
	g := blockdiff.Geometry{Size: n * ebs.BlockSize, BlockSize: ebs.BlockSize}
	pv := blockdifftest.Volume(21, g, 0.2, 0.1)
	copy(pv[5*ebs.BlockSize:], bytes.Repeat([]byte{0x55}, ebs.BlockSize)) // C zeroes it
	p := a.seed(1, "", pv, false)

	// C: rewrites 2 and 30, writes 39 (a hole in P, unless P had data), zeroes 5.
	out, err := a.c.EBS.StartSnapshot(a.ctx, &awsebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(p)})
	if err != nil {
		t.Fatal(err)
	}
	c := aws.ToString(out.SnapshotId)
	cv := bytes.Clone(pv)
	changes := map[int][]byte{2: bytes.Repeat([]byte{0xC2}, ebs.BlockSize), 30: bytes.Repeat([]byte{0xC3}, ebs.BlockSize),
		39: bytes.Repeat([]byte{0xC4}, ebs.BlockSize), 5: make([]byte, ebs.BlockSize)}
	for i, d := range changes {
		copy(cv[i*ebs.BlockSize:], d)
		if err := a.srv.WriteBlock(c, int32(i), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.srv.SetState(c, ebsfake.StatusCompleted, ""); err != nil {
		t.Fatal(err)
	}

	res1, pp, err := copySnapshot(t, a, b, p, g.Size, "", nil)
	if err != nil {
		t.Fatalf("copy P: %v", err)
	}
	if res1.Manifest.Origin != "ebs:"+p {
		t.Fatalf("manifest origin: got %q, want %q", res1.Manifest.Origin, "ebs:"+p)
	}

	getsA := a.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock]
	putsB := b.srv.Stats().Requests[ebsfake.OpPutSnapshotBlock]
	res2, cc, err := copySnapshot(t, a, b, c, g.Size, pp, res1.Manifest)
	if err != nil {
		t.Fatalf("copy C: %v", err)
	}
	if res2.Plan != replicate.PlanChangeList {
		t.Errorf("plan: got %s, want %s", res2.Plan, replicate.PlanChangeList)
	}
	if got := a.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock] - getsA; got != len(changes) {
		t.Errorf("GetSnapshotBlock calls in A: got %d, want %d (the changed blocks only)", got, len(changes))
	}
	if got := b.srv.Stats().Requests[ebsfake.OpPutSnapshotBlock] - putsB; got != len(changes) {
		t.Errorf("PutSnapshotBlock calls in B: got %d, want %d", got, len(changes))
	}
	info, _ := b.srv.Snapshot(cc)
	if info.Status != ebsfake.StatusCompleted || info.ParentID != pp {
		t.Fatalf("C' in B: status %s (%s), parent %s; want completed on %s", info.Status, info.StatusMessage, info.ParentID, pp)
	}
	back, err := ebs.OpenSnapshot(b.ctx, b.c.EBS, cc, ebs.SourceOptions{Size: g.Size})
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(readAll(t, back), cv, ebs.BlockSize); d != -1 {
		t.Fatalf("C' differs from C at block %d", d)
	}
}

// TestSnapshotSets takes crash-consistent sets and replicates one to
// another region, with one volume's copy failing the first time.
func TestSnapshotSets(t *testing.T) {
	a := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	var failing atomic.Bool
	b := newRegion(t, "eu-west-1", ebsfake.Options{Inject: func(c ebsfake.Call) *ebsfake.Fault {
		if failing.Load() && c.Op == ebsfake.OpPutSnapshotBlock {
			return &ebsfake.FaultInternal
		}
		return nil
	}}, ebs.ClientOptions{MaxAttempts: 2, MaxBackoff: time.Millisecond})
	g := blockdiff.Geometry{Size: 6 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	vols := map[string][]byte{
		"vol-000000000000000a1": blockdifftest.Volume(31, g, 0, 0),
		"vol-000000000000000a2": blockdifftest.Volume(32, g, 0, 0),
	}
	for id, v := range vols {
		snap := a.seed(1, "", v, false)
		if err := a.srv.AddVolume(ebsfake.Volume{ID: id, SizeGiB: 1, InstanceID: "i-0123456789abcdef0", SnapshotID: snap}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.srv.AddVolume(ebsfake.Volume{ID: "vol-00000000000000root", SizeGiB: 1, InstanceID: "i-0123456789abcdef0", Root: true}); err != nil {
		t.Fatal(err)
	}
	wait := ebs.WaitOptions{Timeout: 10 * time.Second, MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}

	set, err := ebs.SnapshotInstance(a.ctx, a.c.EC2, "i-0123456789abcdef0", ebs.SetOptions{ExcludeBootVolume: true, Tags: map[string]string{"app": "db"}, Wait: wait})
	if err != nil {
		t.Fatalf("SnapshotInstance: %v", err)
	}
	if len(set.Volumes) != 2 {
		t.Fatalf("set volumes: got %+v, want the 2 data volumes", set.Volumes)
	}
	for _, v := range set.Volumes {
		if v.State != "completed" || v.SizeGiB != 1 || vols[v.VolumeID] == nil {
			t.Errorf("set volume: got %+v, want a completed 1 GiB snapshot of a data volume", v)
		}
	}

	path := filepath.Join(t.TempDir(), "set.json")
	var calls []string
	cp := func(ctx context.Context, v ebs.SetVolume) (string, error) {
		calls = append(calls, v.VolumeID)
		failing.Store(v.VolumeID == "vol-000000000000000a2" && len(calls) <= 2)
		_, id, err := copySnapshot(t, a, b, v.SnapshotID, g.Size, "", nil)
		return id, err
	}
	err = ebs.ReplicateSet(a.ctx, set, cp, ebs.ReplicateOptions{Path: path})
	if err == nil || !strings.Contains(err.Error(), "vol-000000000000000a2") {
		t.Fatalf("ReplicateSet with a failing copy: got %v, want an error naming vol-000000000000000a2", err)
	}
	saved, err := ebs.LoadSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Replicated || saved.Volumes[0].Replicated == saved.Volumes[1].Replicated {
		t.Fatalf("saved set after a partial run: got %+v, want one volume replicated and the set not", saved)
	}
	failing.Store(false)
	if err := ebs.ReplicateSet(a.ctx, saved, cp, ebs.ReplicateOptions{Path: path}); err != nil {
		t.Fatalf("ReplicateSet re-run: %v", err)
	}
	if len(calls) != 3 {
		t.Errorf("copies: got %v, want 3 (the replicated volume not copied again)", calls)
	}
	final, err := ebs.LoadSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if !final.Replicated {
		t.Fatalf("set after the re-run: got %+v, want replicated", final)
	}
	for _, v := range final.Volumes {
		back, err := ebs.OpenSnapshot(b.ctx, b.c.EBS, v.TargetSnapshotID, ebs.SourceOptions{Size: g.Size})
		if err != nil {
			t.Fatal(err)
		}
		if d := firstDiff(readAll(t, back), vols[v.VolumeID], ebs.BlockSize); d != -1 {
			t.Errorf("%s: replicated snapshot differs at block %d", v.VolumeID, d)
		}
	}

	t.Run("gateway volume", func(t *testing.T) {
		arn := "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B/volume/vol-000000000000000a1"
		gs, err := ebs.SnapshotGatewayVolume(a.ctx, a.c.Gateway, a.c.EC2, arn, ebs.SetOptions{Wait: wait})
		if err != nil {
			t.Fatalf("SnapshotGatewayVolume: %v", err)
		}
		if len(gs.Volumes) != 1 || gs.Volumes[0].VolumeID != "vol-000000000000000a1" || gs.Volumes[0].State != "completed" {
			t.Errorf("gateway set: got %+v", gs.Volumes)
		}
	})
	t.Run("a snapshot in error fails the set", func(t *testing.T) {
		slow := newRegion(t, "us-east-1", ebsfake.Options{CompletionDelay: time.Hour}, fastClient)
		for id := range vols {
			if err := slow.srv.AddVolume(ebsfake.Volume{ID: id, SizeGiB: 1, InstanceID: "i-1"}); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() {
			_, err := ebs.SnapshotInstance(slow.ctx, slow.c.EC2, "i-1", ebs.SetOptions{Wait: wait})
			done <- err
		}()
		var bad string
		for deadline := time.Now().Add(5 * time.Second); bad == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, s := range slow.srv.Snapshots() {
				if s.VolumeID != "" {
					bad = s.ID
					break
				}
			}
		}
		if bad == "" {
			t.Fatal("no snapshot was created")
		}
		if err := slow.srv.SetState(bad, ebsfake.StatusError, "disk on fire"); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("SnapshotInstance with a failed snapshot: got %v, want an error naming %s and its message", err, bad)
		}
	})
	if _, err := ebs.LoadSet(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadSet of a missing file: got %v, want ErrNotExist", err)
	}
}
