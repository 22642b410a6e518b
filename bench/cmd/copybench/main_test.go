package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/blockferry/blockferry/bench"
)

// TestRunRsync drives the whole measurement loop with the rsync method on
// a 4 MiB pair (no CLI build), and checks the JSON report.
func TestRunRsync(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsync is not installed (apt-get install rsync); CI=true requires it")
		}
		t.Skip("rsync is not installed (apt-get install rsync)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	w := bench.Workload{Size: 4 << 20, BlockSize: 64 << 10, Zero: 0.3, Dup: 0.1, Change: 0.2, Seed: 1}
	if err := w.WritePair(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteInfo(dir); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(ctx, []string{"-dir", dir, "-runs", "2", "-methods", "rsync", "-bin", "/bin/true", "-json"}, &out, &errb)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if got := len(rep.Samples); got != 2 {
		t.Fatalf("got %d samples, want 2", got)
	}
	for _, s := range rep.Samples {
		if !s.Identical {
			t.Errorf("run %d: target not identical to v2", s.Run)
		}
		if s.Usage.WallSeconds <= 0 || s.Usage.RChar < w.Size {
			t.Errorf("run %d: wall %v s, rchar %d; want > 0 and >= %d (rsync reads v2)", s.Run, s.Usage.WallSeconds, s.Usage.RChar, w.Size)
		}
	}
	if got := rep.Speedup["rsync"]; got != 1 {
		t.Errorf("rsync speed-up vs itself = %v, want 1", got)
	}
	if _, err := os.Stat(dir + "/target.img"); !os.IsNotExist(err) {
		t.Errorf("target.img left behind without -keep (stat: %v)", err)
	}
}

func TestMedian(t *testing.T) {
	ss := []Sample{
		{Method: "a", Usage: bench.UsageJSON{WallSeconds: 3, MaxRSS: 10}, Identical: true},
		{Method: "a", Usage: bench.UsageJSON{WallSeconds: 1, MaxRSS: 30}, Identical: true},
		{Method: "b", Usage: bench.UsageJSON{WallSeconds: 9}},
		{Method: "a", Usage: bench.UsageJSON{WallSeconds: 2, MaxRSS: 20}, Identical: false},
	}
	m := median(ss, "a")
	if m.Usage.WallSeconds != 2 || m.Usage.MaxRSS != 20 {
		t.Errorf("median wall %v rss %d, want 2 and 20", m.Usage.WallSeconds, m.Usage.MaxRSS)
	}
	if m.Identical {
		t.Error("median Identical = true although one run differed, want false")
	}
}
