package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blockferry/blockferry/bench"
)

// TestRunSmall runs the whole benchmark on a 4 MiB pair: blockferry to a
// directory store (and to S3 when BLOCKFERRY_S3_ENDPOINT is set, as
// scripts/test.sh does), restic and casync when installed. It checks every
// restore is byte-identical, the incremental backup stores about the
// changed blocks only, the restore onto v1 writes exactly the changed
// blocks, and S3 requests were counted.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the blockferry CLI; skipped with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "blockferry")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/blockferry/blockferry/cmd/blockferry").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/blockferry: %v\n%s", err, out)
	}
	w := bench.Workload{Size: 4 << 20, BlockSize: 64 << 10, Zero: 0.3, Dup: 0.1, Change: 0.2, Seed: 1}
	if err := w.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteInfo(dir); err != nil {
		t.Fatal(err)
	}
	counts := w.Counts()
	if counts.Changed == 0 {
		t.Fatal("workload has no changed block; pick another seed")
	}

	want := []string{toolDir}
	args := []string{"-dir", dir, "-bin", bin, "-json"}
	if os.Getenv("BLOCKFERRY_S3_ENDPOINT") != "" {
		args = append(args, "-s3")
		want = append(want, toolS3)
	}
	for _, tool := range []string{toolRestic, toolCasync} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (apt-get install %s); CI=true requires it", tool, tool)
			}
			t.Logf("%s not installed: its steps are not checked", tool)
			continue
		}
		want = append(want, tool)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if !slices.Equal(rep.Tools, want) {
		t.Fatalf("got tools %v, want %v (stderr: %s)", rep.Tools, want, errb.String())
	}
	get := func(tool, step string) *Sample {
		for i := range rep.Median {
			if rep.Median[i].Tool == tool && rep.Median[i].Step == step {
				return &rep.Median[i]
			}
		}
		return nil
	}
	bs := int64(w.BlockSize)
	for _, tool := range want {
		steps := stepNames
		if tool == toolRestic {
			steps = stepNames[:3]
		}
		for _, step := range steps {
			t.Run(tool+"/"+step, func(t *testing.T) {
				s := get(tool, step)
				if s == nil {
					t.Fatalf("no sample")
				}
				if s.Usage.WallSeconds <= 0 || s.Usage.MaxRSS <= 0 {
					t.Errorf("got wall %v s, peak RSS %d; want both > 0", s.Usage.WallSeconds, s.Usage.MaxRSS)
				}
				if step == "backup-v1" && s.Added.Files == 0 {
					t.Errorf("backup of v1 created no object in the store")
				}
				if step == "backup-v2" && (s.Added.Bytes <= 0 || s.Added.Bytes >= get(tool, "backup-v1").Added.Bytes) {
					t.Errorf("incremental backup added %d bytes, want > 0 and less than the full backup's %d",
						s.Added.Bytes, get(tool, "backup-v1").Added.Bytes)
				}
				if step == "restore-v2" || step == "restore-onto" {
					if s.Identical == nil || !*s.Identical {
						t.Errorf("restore not reported identical to v2.img")
					}
					if s.Added != (bench.DirStats{}) {
						t.Errorf("restore changed the store by %+v, want nothing", s.Added)
					}
				}
			})
		}
	}
	for _, tool := range []string{toolDir, toolS3} {
		if !slices.Contains(want, tool) {
			continue
		}
		// The changed blocks hold fresh random bytes (incompressible):
		// the incremental stores them plus a manifest and snapshot record.
		if got, lo, hi := get(tool, "backup-v2").Added.Bytes, counts.Changed*bs, counts.Changed*bs+bs; got < lo || got > hi {
			t.Errorf("%s: incremental backup added %d bytes, want between %d (changed blocks) and %d", tool, got, lo, hi)
		}
		if s := get(tool, "restore-onto"); s.Written == nil || *s.Written != counts.Changed {
			t.Errorf("%s: restore onto v1 wrote %s blocks, want the %d changed", tool, deref(s.Written), counts.Changed)
		}
	}
	if slices.Contains(want, toolS3) {
		r := get(toolS3, "backup-v2").Requests
		if r == nil || r.ByMethod["PUT"] < counts.Changed {
			t.Errorf("S3 incremental backup: requests %+v, want at least %d PUTs (one per changed block)", r, counts.Changed)
		}
		if r := get(toolS3, "restore-v2").Requests; r == nil || r.ByMethod["PUT"] != 0 || r.ByMethod["GET"] == 0 {
			t.Errorf("S3 restore: requests %+v, want GETs and no PUT", r)
		}
	}
	for _, peer := range want[1:] {
		if peer == toolS3 {
			continue
		}
		if !slices.ContainsFunc(rep.Ratios, func(r Ratio) bool { return r.Peer == peer && r.Figure == "bytes stored after v1+v2" && r.Value > 0 }) {
			t.Errorf("no bytes-stored ratio for %s in %+v", peer, rep.Ratios)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "casbench")); !os.IsNotExist(err) {
		t.Errorf("work directory left behind without -keep (stat: %v)", err)
	}
}

func TestRatios(t *testing.T) {
	s := func(tool, step string, wall float64, stored, added int64) Sample {
		return Sample{Tool: tool, Step: step, Usage: bench.UsageJSON{WallSeconds: wall},
			Store: bench.DirStats{Bytes: stored}, Added: bench.DirStats{Bytes: added}}
	}
	med := []Sample{
		s(toolDir, "backup-v1", 2, 100, 100), s(toolDir, "backup-v2", 1, 110, 10),
		s(toolRestic, "backup-v1", 6, 150, 150), s(toolRestic, "backup-v2", 4, 180, 30),
	}
	got := ratios(med)
	want := []Ratio{
		{toolRestic, "backup-v1 wall", 3}, {toolRestic, "backup-v2 wall", 4},
		{toolRestic, "bytes stored after v1+v2", 180.0 / 110}, {toolRestic, "bytes added by v2", 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMedian(t *testing.T) {
	ss := []Sample{
		{Tool: "a", Step: "x", Usage: bench.UsageJSON{WallSeconds: 3, MaxRSS: 10}},
		{Tool: "a", Step: "x", Usage: bench.UsageJSON{WallSeconds: 1, MaxRSS: 30}},
		{Tool: "a", Step: "y", Usage: bench.UsageJSON{WallSeconds: 9}},
		{Tool: "a", Step: "x", Usage: bench.UsageJSON{WallSeconds: 2, MaxRSS: 20}},
	}
	m, ok := median(ss, "a", "x")
	if !ok || m.Usage.WallSeconds != 2 || m.Usage.MaxRSS != 20 {
		t.Errorf("got wall %v, RSS %d, ok %v; want 2, 20, true", m.Usage.WallSeconds, m.Usage.MaxRSS, ok)
	}
	if _, ok := median(ss, "b", "x"); ok {
		t.Error("median of no samples: got ok, want not ok")
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	w := bench.Workload{Size: 1 << 20, BlockSize: 64 << 10, Seed: 1}
	if err := w.WriteInfo(dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-dir", dir, "-runs", "0"}, {"-dir", dir, "extra"}, {"-dir", dir, "-tools", "borg", "-bin", "/bin/true"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err == nil {
			t.Errorf("run(%q): got nil error, want one", args)
		}
	}
}

func deref(p *int64) string {
	if p == nil {
		return "(not reported)"
	}
	return fmt.Sprint(*p)
}
