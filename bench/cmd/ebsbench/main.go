// Command ebsbench measures blockferry's EBS adapter against ebsfake with
// injected latency: an upload of a volume into a new snapshot, a download
// of that snapshot into a file, and a cross-region copy of it into a new
// snapshot of a second fake region (see bench/README.md):
//
//	go run ./bench/cmd/ebsbench [-size 1GiB] [-latency 20ms] [-concurrency 16] [-throttle 200] [-json]
//
// Every step runs twice: with latency only, and with per-snapshot
// throttling of PutSnapshotBlock and GetSnapshotBlock at -throttle requests
// per second (the SDK's retryer, blockferry's retry policy, absorbs the
// 400 RequestThrottledException answers). The fakes run in this process,
// on 127.0.0.1, with block data in a log file under -dir; each transfer
// runs in a child process (this program again) measured with bench.Measure,
// so its peak RSS is the transfer's alone. Reported per step: throughput
// against the ideal concurrency × 512 KiB / latency, requests per block
// moved (all requests the fakes served during the step, retries included,
// from ebsfake Stats), throttled answers, wall and CPU time, peak RSS.
// The downloaded file is compared with the workload's v1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/blockferry/blockferry/bench"
	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
)

// childEnv marks a child process started by this program to run one
// transfer.
const childEnv = "EBSBENCH_CHILD"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	var err error
	if os.Getenv(childEnv) == "1" {
		err = child(ctx, os.Args[1:], os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ebsbench: %v\n", err)
		os.Exit(1)
	}
}

// config is the parent's flags.
type config struct {
	size        int64
	latency     time.Duration
	concurrency int
	throttle    float64
	burst       int
	maxBackoff  time.Duration
	retryMode   string
	dir         string
	json        bool
}

// Row is one measured step.
type Row struct {
	Scenario      string  `json:"scenario"` // "latency" or "throttled"
	Step          string  `json:"step"`     // "upload", "download", "copy"
	Blocks        int64   `json:"blocks"`   // blocks moved (put, or fetched for a download)
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"transfer_seconds"` // replicate's own duration
	MiBps         float64 `json:"mib_per_s"`
	IdealMiBps    float64 `json:"ideal_mib_per_s"`
	PctIdeal      float64 `json:"pct_of_ideal"`
	Requests      int     `json:"requests"` // served by the fakes during the step, retries included
	ReqPerBlock   float64 `json:"requests_per_block"`
	Throttled     int     `json:"throttled"`
	WallSeconds   float64 `json:"wall_seconds"` // of the child process
	CPUSeconds    float64 `json:"cpu_seconds"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	SnapshotID    string  `json:"snapshot_id,omitempty"`
	SourceSnapID  string  `json:"source_snapshot_id,omitempty"`
	VerifiedBytes bool    `json:"verified,omitempty"` // download compared with the workload
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("ebsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	size := fs.String("size", "1GiB", "volume size, e.g. 64MiB, 1GiB, 4GiB")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency the fakes add to every request")
	fs.IntVar(&c.concurrency, "concurrency", 16, "blocks in flight (replicate Concurrency)")
	fs.Float64Var(&c.throttle, "throttle", 200, "throttled scenario: PutSnapshotBlock and GetSnapshotBlock per snapshot per second (0: skip it)")
	fs.IntVar(&c.burst, "burst", 0, "throttled scenario: token bucket size (default: the rate)")
	fs.DurationVar(&c.maxBackoff, "max-backoff", 0, "client retry backoff cap (default: the ebs package's, 20s)")
	fs.StringVar(&c.retryMode, "retry-mode", "standard", "client retry mode: standard or adaptive")
	fs.StringVar(&c.dir, "dir", "", "scratch directory for the fakes' block logs and the downloaded file (default: a temporary one, removed)")
	fs.BoolVar(&c.json, "json", false, "print the rows as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.size, err = bench.ParseSize(*size); err != nil {
		return err
	}
	if c.size < ebs.BlockSize || c.concurrency < 1 || c.latency < 0 || c.throttle < 0 {
		return fmt.Errorf("want -size of at least 512KiB, -concurrency of at least 1, non-negative -latency and -throttle")
	}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "ebsbench-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(c.dir)) }()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	scen := []struct {
		name string
		t    ebsfake.Throttle
	}{{"latency", ebsfake.Throttle{}}}
	if c.throttle > 0 {
		scen = append(scen, struct {
			name string
			t    ebsfake.Throttle
		}{"throttled", ebsfake.Throttle{PutPerSnapshot: c.throttle, GetPerSnapshot: c.throttle, Burst: c.burst}})
	}
	var rows []Row
	for _, s := range scen {
		r, err := scenario(ctx, c, self, s.name, s.t)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, r...)
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printTable(stdout, c, rows)
	return nil
}

// scenario runs upload, download and copy against fresh fakes.
func scenario(ctx context.Context, c config, self, name string, t ebsfake.Throttle) (rows []Row, err error) {
	mk := func(region string) (*ebsfake.Server, *httptest.Server, error) {
		srv, err := ebsfake.New(ebsfake.Options{Region: region, Latency: c.latency, Throttle: t, DataDir: c.dir})
		if err != nil {
			return nil, nil, err
		}
		return srv, httptest.NewServer(srv), nil
	}
	a, ha, err := mk("us-east-1")
	if err != nil {
		return nil, err
	}
	defer func() { ha.Close(); err = errors.Join(err, a.Close()) }()
	b, hb, err := mk("us-west-2")
	if err != nil {
		return nil, err
	}
	defer func() { hb.Close(); err = errors.Join(err, b.Close()) }()

	ideal := float64(c.concurrency) * ebs.BlockSize / c.latency.Seconds() / (1 << 20)
	out := filepath.Join(c.dir, "download.img")
	base := []string{"-size", fmt.Sprint(c.size), "-concurrency", fmt.Sprint(c.concurrency),
		"-max-backoff", c.maxBackoff.String(), "-retry-mode", c.retryMode}
	step := func(stepName string, extra ...string) (Row, childResult, error) {
		before := total(a.Stats(), b.Stats())
		cmd := exec.CommandContext(ctx, self, append(append([]string{stepName}, base...), extra...)...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		var so, se bytesBuffer
		cmd.Stdout, cmd.Stderr = &so, &se
		u, err := bench.Measure(cmd)
		if err != nil {
			return Row{}, childResult{}, fmt.Errorf("%s: %w: %s", stepName, err, se.String())
		}
		var res childResult
		if err := json.Unmarshal(so.b, &res); err != nil {
			return Row{}, res, fmt.Errorf("%s: child output %q: %w", stepName, so.String(), err)
		}
		after := total(a.Stats(), b.Stats())
		r := Row{
			Scenario: name, Step: stepName, Blocks: res.Blocks, Bytes: res.Blocks * ebs.BlockSize,
			Seconds: res.Seconds, IdealMiBps: ideal, Requests: after.requests - before.requests,
			Throttled: after.throttled - before.throttled, WallSeconds: u.Wall.Seconds(),
			CPUSeconds: (u.User + u.Sys).Seconds(), PeakRSSMiB: float64(u.MaxRSS) / (1 << 20),
			SnapshotID: res.SnapshotID,
		}
		if res.Seconds > 0 {
			r.MiBps = float64(r.Bytes) / (1 << 20) / res.Seconds
			r.PctIdeal = 100 * r.MiBps / ideal
		}
		if r.Blocks > 0 {
			r.ReqPerBlock = float64(r.Requests) / float64(r.Blocks)
		}
		return r, res, nil
	}
	up, res, err := step("upload", "-a", ha.URL)
	if err != nil {
		return nil, err
	}
	snap := res.SnapshotID
	down, _, err := step("download", "-a", ha.URL, "-snap", snap, "-out", out)
	if err != nil {
		return nil, err
	}
	down.SourceSnapID = snap
	down.VerifiedBytes = true // the child compares every block with the workload
	if err := os.Remove(out); err != nil {
		return nil, err
	}
	cp, _, err := step("copy", "-a", ha.URL, "-b", hb.URL, "-snap", snap)
	if err != nil {
		return nil, err
	}
	cp.SourceSnapID = snap
	return []Row{up, down, cp}, nil
}

type counts struct{ requests, throttled int }

func total(ss ...ebsfake.Stats) counts {
	var c counts
	for _, s := range ss {
		for _, n := range s.Requests {
			c.requests += n
		}
		c.throttled += s.Throttled
	}
	return c
}

func printTable(w io.Writer, c config, rows []Row) {
	fmt.Fprintf(w, "ebsbench: %s volume, %v latency per request, concurrency %d, ideal %.0f MiB/s (concurrency × 512 KiB / latency)\n",
		bench.FormatSize(c.size), c.latency, c.concurrency, float64(c.concurrency)*ebs.BlockSize/c.latency.Seconds()/(1<<20))
	if c.throttle > 0 {
		fmt.Fprintf(w, "throttled: %.0f PutSnapshotBlock and GetSnapshotBlock per snapshot per second, retry mode %s\n", c.throttle, c.retryMode)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstep\tblocks\tMiB/s\t% ideal\treq/block\tthrottled\ttransfer s\twall s\tCPU s\tpeak RSS MiB\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.0f%%\t%.2f\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t\n", r.Scenario, r.Step, r.Blocks, r.MiBps, r.PctIdeal,
			r.ReqPerBlock, r.Throttled, r.Seconds, r.WallSeconds, r.CPUSeconds, r.PeakRSSMiB)
	}
	tw.Flush()
}

// bytesBuffer collects a child's output.
type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }
func (b *bytesBuffer) String() string              { return string(b.b) }

// workload is the volume every step moves: v1 of a seeded workload with a
// few zero and duplicate blocks.
func workload(size int64) bench.Workload {
	return bench.Workload{Size: size, Zero: 0.02, Dup: 0.02, Seed: 7}
}

// childResult is what a child prints.
type childResult struct {
	SnapshotID string          `json:"snapshot_id,omitempty"`
	Blocks     int64           `json:"blocks"`
	Seconds    float64         `json:"seconds"`
	Stats      replicate.Stats `json:"stats"`
}

// child runs one transfer: upload (workload v1 into a new snapshot in
// region A), download (snapshot -snap of A into file -out, then compared
// with the workload) or copy (snapshot -snap of A into a new snapshot of
// region B).
func child(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("child: no step")
	}
	stepName := args[0]
	fs := flag.NewFlagSet("ebsbench child", flag.ContinueOnError)
	size := fs.Int64("size", 0, "")
	conc := fs.Int("concurrency", 16, "")
	maxBackoff := fs.Duration("max-backoff", 0, "")
	mode := fs.String("retry-mode", "standard", "")
	aURL := fs.String("a", "", "")
	bURL := fs.String("b", "", "")
	snap := fs.String("snap", "", "")
	out := fs.String("out", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	clients := func(region, url string) (*ebs.Clients, error) {
		return ebs.NewClientsFromConfig(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
			ebs.ClientOptions{Region: region, EBSEndpoint: url, EC2Endpoint: url, MaxBackoff: *maxBackoff, RetryMode: aws.RetryMode(*mode)})
	}
	w := workload(*size)
	ca, err := clients("us-east-1", *aURL)
	if err != nil {
		return err
	}
	var src blockdiff.Source
	var dst blockdiff.Sink
	var newSnap *ebs.Sink
	switch stepName {
	case "upload":
		if src, err = w.Source(bench.V1); err != nil {
			return err
		}
		if newSnap, err = ebs.NewSnapshot(ctx, ca.EBS, ca.EC2, ebs.SinkOptions{Size: *size}); err != nil {
			return err
		}
		dst = newSnap
	case "download", "copy":
		if src, err = ebs.OpenSnapshot(ctx, ca.EBS, *snap, ebs.SourceOptions{Size: *size}); err != nil {
			return err
		}
		if stepName == "download" {
			if dst, err = sink.OpenFile(*out, w.Geometry(), sink.Options{}); err != nil {
				return err
			}
			break
		}
		cb, err := clients("us-west-2", *bURL)
		if err != nil {
			return err
		}
		if newSnap, err = ebs.NewSnapshot(ctx, cb.EBS, cb.EC2, ebs.SinkOptions{Size: *size}); err != nil {
			return err
		}
		dst = newSnap
	default:
		return fmt.Errorf("child: unknown step %q", stepName)
	}
	res, err := replicate.Run(ctx, src, dst, replicate.Options{Concurrency: *conc})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r := childResult{Stats: res.Stats, Seconds: res.Stats.Duration.Seconds()}
	if newSnap != nil {
		r.SnapshotID = newSnap.SnapshotID()
		r.Blocks = res.Stats.Written + res.Stats.Zeroed
	} else {
		r.Blocks = res.Stats.Read
		if err := checkFile(ctx, *out, w); err != nil {
			return err
		}
	}
	return json.NewEncoder(stdout).Encode(r)
}

// checkFile compares the downloaded file with the workload's v1, block by
// block.
func checkFile(ctx context.Context, path string, w bench.Workload) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	g := w.Geometry()
	want, got := make([]byte, g.BlockSize), make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, _ := w.Block(bench.V1, i, want)
		if _, err := f.ReadAt(got[:n], g.Offset(i)); err != nil {
			return fmt.Errorf("check %s: block %d: %w", path, i, err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			return fmt.Errorf("check %s: block %d differs from the workload", path, i)
		}
	}
	return nil
}
