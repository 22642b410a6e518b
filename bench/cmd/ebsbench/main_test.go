package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as ebsbench's child process.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := child(context.Background(), os.Args[1:], os.Stdout); err != nil {
			os.Stderr.WriteString("ebsbench child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunSmall runs every step of both scenarios on a 4 MiB volume and
// checks the rows against the workload.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	args := []string{"-size", "4MiB", "-latency", "2ms", "-concurrency", "4", "-throttle", "40", "-burst", "2", "-max-backoff", "20ms", "-json", "-dir", t.TempDir()}
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("ebsbench %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var rows []Row
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("output is not JSON rows: %v\n%s", err, out.String())
	}
	if len(rows) != 6 {
		t.Fatalf("rows: got %d, want 6 (3 steps × 2 scenarios)", len(rows))
	}
	c := workload(4 << 20).Counts()
	data := c.Dup + c.Unique
	throttled := 0
	for _, r := range rows {
		name := r.Scenario + "/" + r.Step
		if r.Blocks != data {
			t.Errorf("%s: blocks moved: got %d, want %d (the workload's data blocks)", name, r.Blocks, data)
		}
		min := 1.0
		if r.Step == "copy" {
			min = 2 // a get and a put per block
		}
		if r.ReqPerBlock < min {
			t.Errorf("%s: requests per block: got %.2f, want at least %.0f", name, r.ReqPerBlock, min)
		}
		if r.MiBps <= 0 || r.IdealMiBps != 4*0.5/0.002 || r.PeakRSSMiB <= 0 || r.CPUSeconds <= 0 {
			t.Errorf("%s: got %+v, want positive throughput, RSS and CPU and an ideal of 1000 MiB/s", name, r)
		}
		if r.Step != "download" && !strings.HasPrefix(r.SnapshotID, "snap-") {
			t.Errorf("%s: snapshot id %q, want snap-…", name, r.SnapshotID)
		}
		if r.Step == "download" && !r.VerifiedBytes {
			t.Errorf("%s: download not verified", name)
		}
		if r.Scenario == "latency" && r.Throttled != 0 {
			t.Errorf("%s: throttled %d, want 0 without throttling", name, r.Throttled)
		}
		if r.Scenario == "throttled" {
			throttled += r.Throttled
		}
	}
	if throttled == 0 {
		t.Errorf("throttled scenario: no request was throttled at 40/s with a burst of 2")
	}
}
