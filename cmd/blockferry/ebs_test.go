package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
)

// fakeRegion is an ebsfake server on 127.0.0.1 and the flags that point
// the CLI at it.
type fakeRegion struct {
	name string
	srv  *ebsfake.Server
	url  string
}

func newFakeRegion(t *testing.T, name string, opts ...ebsfake.Options) *fakeRegion {
	t.Helper()
	var o ebsfake.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Region = name
	srv, err := ebsfake.New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &fakeRegion{name: name, srv: srv, url: hs.URL}
}

// src returns the flags naming r as the source side.
func (r *fakeRegion) src() []string {
	return []string{"--region", r.name, "--ebs-endpoint", r.url, "--ec2-endpoint", r.url, "--gateway-endpoint", r.url}
}

// dst returns the flags naming r as the target side.
func (r *fakeRegion) dst() []string {
	return []string{"--dest-region", r.name, "--dest-ebs-endpoint", r.url, "--dest-ec2-endpoint", r.url}
}

func (r *fakeRegion) count(op ebsfake.Op) int { return r.srv.Stats().Requests[op] }

// fakeAWSEnv gives the SDK static fake credentials and nothing else from
// the environment or the machine (no shared config, no instance metadata).
func fakeAWSEnv(t *testing.T, withCreds bool) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EBS", "AWS_ENDPOINT_URL_EC2"} {
		t.Setenv(k, "")
	}
	if withCreds {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "fakesecret")
	} else {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	}
}

const ebsBS = 512 << 10

// ebsPair returns two versions of a volume of n 512 KiB blocks and a short
// tail: v2 has blocks rewritten, one zeroed and one written in a hole.
// changed is how many blocks differ.
func ebsPair(n int, tail int) (v1, v2 []byte, changed int) {
	rng := rand.New(rand.NewChaCha8([32]byte{'e', 'b', 's'}))
	v1 = make([]byte, n*ebsBS+tail)
	for i := 0; i < n; i++ {
		if i%5 == 4 {
			continue // hole / zeros
		}
		for j := i * ebsBS; j < (i+1)*ebsBS; j += 8 {
			b := rng.Uint64()
			for k := 0; k < 8; k++ {
				v1[j+k] = byte(b >> (8 * k))
			}
		}
	}
	for j := n * ebsBS; j < len(v1); j++ {
		v1[j] = byte(j)
	}
	v2 = bytes.Clone(v1)
	fill := func(i int, c byte) {
		copy(v2[i*ebsBS:(i+1)*ebsBS], bytes.Repeat([]byte{c}, ebsBS))
	}
	fill(1, 0xA1)      // rewritten
	fill(6, 0xA2)      // rewritten
	fill(4, 0xA3)      // was zero
	fill(3, 0)         // zeroed
	v2[len(v2)-1] ^= 1 // tail
	return v1, v2, 5
}

func copyJSON(t *testing.T, args ...string) copyResult {
	t.Helper()
	var r copyResult
	mustJSON(t, &r, append([]string{"copy"}, args...)...)
	return r
}

// TestEBSRoundTrip: file v1 → new snapshot in region A, v2 → incremental
// snapshot on it, both copied to region B (v2 by change list), and B's v2
// back to a file, byte for byte.
func TestEBSRoundTrip(t *testing.T) {
	fakeAWSEnv(t, true)
	a, b := newFakeRegion(t, "us-east-1"), newFakeRegion(t, "us-west-2")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	v1, v2, changed := ebsPair(12, 100<<10)
	p1, p2 := filepath.Join(dir, "v1.img"), filepath.Join(dir, "v2.img")
	if err := os.WriteFile(p1, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p2, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	sd := []string{"--state-dir", state}
	withA := func(args ...string) []string { return append(append(args, sd...), a.dst()...) }

	r1 := copyJSON(t, withA(p1, "ebs:new", "--tag", "app=db", "--description", "v1")...)
	if !strings.HasPrefix(r1.Snapshot, "snap-") {
		t.Fatalf("copy to ebs:new: snapshot id %q, want snap-…", r1.Snapshot)
	}
	info, _ := a.srv.Snapshot(r1.Snapshot)
	if info.Status != ebsfake.StatusCompleted || info.VolumeSize != 1 || info.Description != "v1" || len(info.Tags) != 1 {
		t.Fatalf("A1: got %+v, want completed, 1 GiB, description v1, one tag", info)
	}
	if r1.Manifest == "" || r1.Geometry.Size != int64(len(v1)) {
		t.Fatalf("A1 result: manifest %q size %d, want a saved manifest of %d bytes", r1.Manifest, r1.Geometry.Size, len(v1))
	}

	putsA := a.count(ebsfake.OpPutSnapshotBlock)
	r2 := copyJSON(t, withA(p2, "ebs:new", "--parent", r1.Snapshot)...)
	if r2.BaseHow != "parent" {
		t.Errorf("A2 base: got %q, want the parent's saved manifest", r2.BaseHow)
	}
	if got := a.count(ebsfake.OpPutSnapshotBlock) - putsA; got != changed {
		t.Errorf("A2 puts: got %d, want %d (the changed blocks only)", got, changed)
	}

	toB := func(args ...string) []string { return append(append(append(args, sd...), a.src()...), b.dst()...) }
	r3 := copyJSON(t, toB("ebs:"+r1.Snapshot, "ebs:new")...)
	getsA, putsB := a.count(ebsfake.OpGetSnapshotBlock), b.count(ebsfake.OpPutSnapshotBlock)
	r4 := copyJSON(t, toB("ebs:"+r2.Snapshot, "ebs:new", "--parent", r3.Snapshot)...)
	if r4.Plan != replicate.PlanChangeList {
		t.Errorf("B2 plan: got %s, want %s", r4.Plan, replicate.PlanChangeList)
	}
	if got := a.count(ebsfake.OpGetSnapshotBlock) - getsA; got > changed {
		t.Errorf("B2: GetSnapshotBlock in A: got %d, want at most %d (changed blocks)", got, changed)
	}
	if got := b.count(ebsfake.OpPutSnapshotBlock) - putsB; got != changed {
		t.Errorf("B2: PutSnapshotBlock in B: got %d, want %d", got, changed)
	}
	if r4.Geometry.Size != int64(len(v2)) {
		t.Errorf("B2 size: got %d, want %d (the file's, from the saved manifest)", r4.Geometry.Size, len(v2))
	}

	out := filepath.Join(dir, "out.img")
	mustCLI(t, append([]string{"copy", "ebs:" + r4.Snapshot, out, "--region", b.name, "--ebs-endpoint", b.url}, sd...)...)
	if got := readFile(t, out); !bytes.Equal(got, v2) {
		t.Fatalf("B2 → file: %d bytes, differs from v2 (%d bytes)", len(got), len(v2))
	}
	// Without the state dir the snapshot reads at its whole GiB, unless --size.
	out2 := filepath.Join(dir, "out2.img")
	mustCLI(t, "copy", "ebs:"+r4.Snapshot, out2, "--region", b.name, "--ebs-endpoint", b.url, "--state-dir", t.TempDir(), "--size", "6244KiB")
	if got := readFile(t, out2); !bytes.Equal(got, v2) {
		t.Fatalf("B2 → file with --size: %d bytes, differs from v2", len(got))
	}
}

func TestEBSErrors(t *testing.T) {
	fakeAWSEnv(t, true)
	a := newFakeRegion(t, "us-east-1")
	dir := t.TempDir()
	img := filepath.Join(dir, "v.img")
	if err := os.WriteFile(img, make([]byte, ebsBS), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"unknown snapshot", append([]string{"copy", "ebs:snap-0123456789abcdef0", filepath.Join(dir, "o.img")}, a.src()...),
			[]string{"snap-0123456789abcdef0", "not found"}},
		{"not a snapshot id", append([]string{"copy", "ebs:vol-1", filepath.Join(dir, "o.img")}, a.src()...),
			[]string{"ebs:snap-ID"}},
		{"existing snapshot as target", append([]string{"copy", img, "ebs:snap-0123456789abcdef0"}, a.dst()...),
			[]string{"ebs:new"}},
		{"bad retry mode", append([]string{"copy", img, "ebs:new", "--retry-mode", "eager"}, a.dst()...),
			[]string{"standard or adaptive"}},
		{"unknown parent", append([]string{"copy", img, "ebs:new", "--parent", "snap-0123456789abcdef0", "--state-dir", dir}, a.dst()...),
			[]string{"snap-0123456789abcdef0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := cli(t, tc.args...)
			oneErrorLine(t, stderr, err, tc.wants...)
		})
	}
}

// TestEBSNoCredentials: with no credentials anywhere the copy fails at
// once with a line that says what to set, and never reaches the network.
func TestEBSNoCredentials(t *testing.T) {
	fakeAWSEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, stderr, err := cliCtx(t, ctx, "copy", "ebs:snap-0123456789abcdef0", tempPath(t, "o.img"),
		"--region", "us-east-1", "--ebs-endpoint", "http://127.0.0.1:1")
	oneErrorLine(t, stderr, err, "credentials", "AWS_ACCESS_KEY_ID")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v, want a prompt failure", d)
	}
	t.Run("endpoint down", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "fakesecret")
		_, stderr, err := cliCtx(t, ctx, "copy", "ebs:snap-0123456789abcdef0", tempPath(t, "o.img"),
			"--region", "us-east-1", "--ebs-endpoint", "http://127.0.0.1:1", "--retry-max-attempts", "2", "--retry-max-backoff", "10ms")
		oneErrorLine(t, stderr, err, "127.0.0.1:1", "does not answer")
	})
	t.Run("no region", func(t *testing.T) {
		_, stderr, err := cliCtx(t, ctx, "copy", "ebs:snap-0123456789abcdef0", tempPath(t, "o.img"))
		oneErrorLine(t, stderr, err, "ebs:snap-0123456789abcdef0", "region", "--region")
	})
}

// TestSnapshotInstance takes a set of an instance's volumes in the fake
// (EC2 CreateSnapshots), replicates it to another region and reads a
// replicated volume back.
func TestSnapshotInstance(t *testing.T) {
	fakeAWSEnv(t, true)
	a, b := newFakeRegion(t, "us-east-1", ebsfake.Options{}), newFakeRegion(t, "us-west-2", ebsfake.Options{})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	v1, _, _ := ebsPair(8, 0)
	img := filepath.Join(dir, "v.img")
	if err := os.WriteFile(img, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	// The data volume was restored from a snapshot the CLI wrote.
	seed := copyJSON(t, append([]string{img, "ebs:new", "--state-dir", state}, a.dst()...)...)
	const inst = "i-0123456789abcdef0"
	for _, v := range []ebsfake.Volume{
		{ID: "vol-000000000000000a1", SizeGiB: 1, InstanceID: inst, SnapshotID: seed.Snapshot},
		{ID: "vol-0000000000000root", SizeGiB: 1, InstanceID: inst, Root: true},
	} {
		if err := a.srv.AddVolume(v); err != nil {
			t.Fatal(err)
		}
	}

	var got snapshotResult
	mustJSON(t, &got, append([]string{"snapshot", "instance", inst, "--tag", "app=db"}, a.src()...)...)
	if got.Set == nil || len(got.Set.Volumes) != 2 || got.Set.Kind != "instance" || got.Set.Source != inst {
		t.Fatalf("snapshot instance: got %+v, want a set of the 2 volumes of %s", got.Set, inst)
	}
	for _, v := range got.Set.Volumes {
		info, ok := a.srv.Snapshot(v.SnapshotID)
		if !ok || v.State != "completed" || info.VolumeID != v.VolumeID || len(info.Tags) != 1 {
			t.Errorf("volume %s: got %+v (fake: %+v), want a completed, tagged snapshot of it", v.VolumeID, v, info)
		}
	}
	text := mustCLI(t, append([]string{"snapshot", "instance", inst, "--exclude-boot"}, a.src()...)...)
	if !strings.Contains(text, "vol-000000000000000a1 -> snap-") || strings.Contains(text, "vol-0000000000000root") {
		t.Errorf("snapshot instance --exclude-boot output: got %q, want the data volume only", text)
	}

	setFile := filepath.Join(dir, "set.json")
	var rep snapshotResult
	mustJSON(t, &rep, append(append([]string{"snapshot", "instance", inst, "--exclude-boot", "--replicate-to", "ebs:new",
		"--set", setFile, "--state-dir", state}, a.src()...), b.dst()...)...)
	if !rep.Set.Replicated || len(rep.Set.Volumes) != 1 || !strings.HasPrefix(rep.Set.Volumes[0].TargetSnapshotID, "snap-") {
		t.Fatalf("replicated set: got %+v, want one replicated volume", rep.Set)
	}
	saved, err := ebs.LoadSet(setFile)
	if err != nil || !saved.Replicated {
		t.Fatalf("set file: got %+v, %v; want a replicated set", saved, err)
	}
	out := filepath.Join(dir, "back.img")
	mustCLI(t, "copy", "ebs:"+rep.Set.Volumes[0].TargetSnapshotID, out, "--region", b.name, "--ebs-endpoint", b.url,
		"--size", strconv.Itoa(len(v1)), "--state-dir", state)
	if !bytes.Equal(readFile(t, out), v1) {
		t.Fatal("replicated volume read back differs from the volume's content")
	}

	t.Run("gateway volume", func(t *testing.T) {
		arn := "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B/volume/vol-000000000000000a1"
		var g snapshotResult
		mustJSON(t, &g, append([]string{"snapshot", "gateway-volume", arn}, a.src()...)...)
		if len(g.Set.Volumes) != 1 || g.Set.Volumes[0].VolumeID != "vol-000000000000000a1" || g.Set.Volumes[0].State != "completed" {
			t.Errorf("gateway set: got %+v", g.Set)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			args  []string
			wants []string
		}{
			{"unknown instance", []string{"snapshot", "instance", "i-00000000000000bad"}, []string{"i-00000000000000bad"}},
			{"not an instance", []string{"snapshot", "instance", "vol-1"}, []string{"not an instance id"}},
			{"bad arn", []string{"snapshot", "gateway-volume", "vol-1"}, []string{"volume ARN"}},
			{"no kind", []string{"snapshot"}, []string{"instance INSTANCE-ID"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, stderr, err := cli(t, append(tc.args, a.src()...)...)
				oneErrorLine(t, stderr, err, tc.wants...)
			})
		}
	})
}

// TestEBSResume: a copy to ebs:new that fails part-way continues the same
// pending snapshot when run again with its --journal; one whose snapshot
// can no longer be written starts a new snapshot and drops the journal.
func TestEBSResume(t *testing.T) {
	fakeAWSEnv(t, true)
	var failing atomic.Bool
	var puts atomic.Int32
	a := newFakeRegion(t, "us-east-1", ebsfake.Options{Inject: func(c ebsfake.Call) *ebsfake.Fault {
		if c.Op == ebsfake.OpPutSnapshotBlock && failing.Load() && puts.Add(1) > 4 {
			return &ebsfake.FaultInternal
		}
		return nil
	}})
	dir := t.TempDir()
	v1, _, _ := ebsPair(16, 0)
	img := filepath.Join(dir, "v.img")
	if err := os.WriteFile(img, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			journal := filepath.Join(t.TempDir(), "journal")
			args := append([]string{"copy", img, "ebs:new", "--journal", journal, "--concurrency", "1",
				"--retry-max-attempts", "1", "--state-dir", filepath.Join(dir, "state")}, a.dst()...)
			failing.Store(true)
			puts.Store(0)
			_, stderr, err := cli(t, args...)
			oneErrorLine(t, stderr, err, "PutSnapshotBlock")
			failing.Store(false)
			var pending string
			for _, s := range a.srv.Snapshots() {
				if s.Status == ebsfake.StatusPending {
					pending = s.ID
				}
			}
			if pending == "" {
				t.Fatal("the failed copy left no pending snapshot")
			}
			if restart {
				if err := a.srv.SetState(pending, ebsfake.StatusError, "cancelled"); err != nil {
					t.Fatal(err)
				}
			}
			before := a.count(ebsfake.OpPutSnapshotBlock)
			r := copyJSON(t, args[1:]...)
			sent := a.count(ebsfake.OpPutSnapshotBlock) - before
			notes := strings.Join(r.Notes, "; ")
			switch {
			case !restart && (r.Snapshot != pending || !strings.Contains(notes, "continued pending snapshot")):
				t.Errorf("resume: got snapshot %s, notes %q; want %s continued", r.Snapshot, notes, pending)
			case !restart && sent >= 13:
				t.Errorf("resume: %d puts, want fewer than the 13 data blocks (some were done)", sent)
			case restart && (r.Snapshot == pending || !strings.Contains(notes, "afresh")):
				t.Errorf("restart: got snapshot %s, notes %q; want a new one", r.Snapshot, notes)
			}
			out := filepath.Join(t.TempDir(), "back.img")
			mustCLI(t, append([]string{"copy", "ebs:" + r.Snapshot, out, "--state-dir", filepath.Join(dir, "state")}, a.src()...)...)
			if !bytes.Equal(readFile(t, out), v1) {
				t.Fatal("snapshot read back differs from the file")
			}
		})
	}
}
