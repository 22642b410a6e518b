// Command casbench measures backing a volume up to a content-addressed
// store and restoring it, with blockferry (local directory store, and S3
// on MinIO with -s3) beside restic and casync, on one pair made by genpair
// (see bench/README.md):
//
//	go run ./bench/cmd/casbench -dir DIR [-runs N] [-s3] [-tools blockferry,restic,casync] [-json]
//
// For every run and tool, with fresh stores each run, it measures as child
// processes:
//
//	backup-v1     full backup of v1.img           blockferry copy v1.img cas:STORE#v1
//	backup-v2     incremental backup of v2.img    blockferry copy v2.img cas:STORE#v2
//	restore-v2    restore of v2 into a new file   blockferry copy cas:STORE#v2 out.img
//	restore-onto  restore of v2 onto a copy of v1 blockferry copy cas:STORE#v2 target.img
//
// (restic: restic backup / restic restore; restic 0.14 rewrites whole files,
// so it has no restore-onto. casync: casync make --store / casync extract,
// which uses an existing output file as a seed.) Each step reports wall
// and CPU time, peak RSS (wait4), /proc I/O counters, the store's size
// after it (sum of object sizes, and allocated bytes for directories),
// the objects it created, and for S3 the requests by method, counted by
// a reverse proxy on 127.0.0.1 in front of the server. Every restore is
// compared with v2.img (bench.SameContent); a difference fails the run.
//
// S3: the server named by BLOCKFERRY_S3_ENDPOINT (credentials from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or else a MinIO that
// casbench starts on 127.0.0.1 with its data under DIR, from the binary
// $BLOCKFERRY_MINIO, ~/.cache/blockferry/bin/minio-*, ~/.cache/blockferry/bin/minio
// or minio on PATH. A tool or server that is missing is skipped with a
// message.
//
// The page cache is not dropped: v1.img and v2.img are read from memory.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/blockferry/blockferry/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "casbench:", err)
		}
		os.Exit(1)
	}
}

// Tool names as they appear in the report.
const (
	toolDir    = "blockferry-dir"
	toolS3     = "blockferry-s3"
	toolRestic = "restic"
	toolCasync = "casync"
)

// Step names, in the order they run.
var stepNames = []string{"backup-v1", "backup-v2", "restore-v2", "restore-onto"}

// Sample is one measured step of one tool in one run.
type Sample struct {
	Tool  string          `json:"tool"`
	Step  string          `json:"step"`
	Run   int             `json:"run"`
	Argv  []string        `json:"argv"`
	Usage bench.UsageJSON `json:"usage"`
	// Store is the store's size after the step, Added what the step added.
	Store bench.DirStats `json:"store"`
	Added bench.DirStats `json:"added"`
	// Requests is the S3 requests the step made (S3 only).
	Requests *bench.RequestCounts `json:"requests,omitempty"`
	// Identical is set on restores: the output equals v2.img.
	Identical *bool `json:"identical,omitempty"`
	// Written is the blocks blockferry wrote (restores, from its --json).
	Written *int64          `json:"written_blocks,omitempty"`
	Stats   json.RawMessage `json:"blockferry,omitempty"` // blockferry's --json output
}

// Report is the whole result, printed with -json.
type Report struct {
	Dir         string            `json:"dir"`
	Info        bench.Info        `json:"info"`
	Host        map[string]string `json:"host"`
	PageCache   string            `json:"page_cache"`
	Runs        int               `json:"runs"`
	Tools       []string          `json:"tools"`
	Skipped     []string          `json:"skipped,omitempty"`
	Samples     []Sample          `json:"samples"`
	Median      []Sample          `json:"median"` // one per tool and step, median wall time
	Ratios      []Ratio           `json:"ratios,omitempty"`
	Notes       []string          `json:"notes,omitempty"`
	ChangedSize int64             `json:"changed_bytes"`
}

// Ratio compares a peer tool with blockferry-dir on one figure: Value is
// peer / blockferry, so above 1 means blockferry took less.
type Ratio struct {
	Peer   string  `json:"peer"`
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
}

type config struct {
	dir, work, bin string
	v1, v2         string
	restic, casync string
	blockSize      int
	limit          time.Duration
	stderr         io.Writer
	s3             *s3Server
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("casbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir       = fs.String("dir", "", "directory holding v1.img, v2.img and workload.json from genpair (stores are made in DIR/casbench)")
		runs      = fs.Int("runs", 1, "runs, each with fresh stores; the table shows medians")
		useS3     = fs.Bool("s3", false, "also back up to S3 (BLOCKFERRY_S3_ENDPOINT, or a MinIO started here)")
		toolsF    = fs.String("tools", "blockferry,restic,casync", "comma-separated tools: blockferry, restic, casync")
		bin       = fs.String("bin", "", "blockferry binary to use (default: go build ./cmd/blockferry into a temporary directory)")
		jsonOut   = fs.Bool("json", false, "print the full report as JSON instead of a table")
		jsonFile  = fs.String("json-out", "", "also write the full JSON report to `FILE`")
		keep      = fs.Bool("keep", false, "keep the stores and restored files in DIR/casbench afterwards")
		childTime = fs.Duration("timeout", 30*time.Minute, "limit per child process")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 || *runs < 1 {
		fs.Usage()
		return errors.New("want -dir DIR, -runs >= 1 and no positional arguments")
	}
	info, err := bench.ReadInfo(*dir)
	if err != nil {
		return err
	}
	c := &config{dir: *dir, work: filepath.Join(*dir, "casbench"),
		v1: filepath.Join(*dir, bench.V1Name), v2: filepath.Join(*dir, bench.V2Name),
		blockSize: info.Workload.BlockSize, limit: *childTime, stderr: stderr}
	rep := &Report{Dir: *dir, Info: info, Runs: *runs,
		ChangedSize: info.Counts.Changed * int64(info.Workload.BlockSize),
		PageCache: "not dropped: v1.img and v2.img are read from the page cache; " +
			"each step starts after sync() so earlier write-back does not land in it"}
	if err := os.RemoveAll(c.work); err != nil {
		return err
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(c.work)
	}
	skip := func(msg string) {
		rep.Skipped = append(rep.Skipped, msg)
		fmt.Fprintln(stderr, "casbench: skipping", msg)
	}

	var tools []string
	for _, t := range strings.Split(*toolsF, ",") {
		switch t = strings.TrimSpace(t); t {
		case "blockferry":
			tools = append(tools, toolDir)
			if *useS3 {
				tools = append(tools, toolS3)
			}
		case toolRestic, toolCasync:
			p, err := exec.LookPath(t)
			if err != nil {
				skip(fmt.Sprintf("%s: not installed (apt-get install %s); its columns are left out", t, t))
				continue
			}
			if t == toolRestic {
				c.restic = p
			} else {
				c.casync = p
			}
			tools = append(tools, t)
		default:
			return fmt.Errorf("unknown tool %q: want blockferry, restic or casync", t)
		}
	}

	if slices.Contains(tools, toolDir) && *bin == "" {
		tmp, err := os.MkdirTemp("", "casbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*bin = filepath.Join(tmp, "blockferry")
		fmt.Fprintln(stderr, "casbench: go build -o", *bin, "./cmd/blockferry")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/blockferry/blockferry/cmd/blockferry")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the blockferry CLI (or pass -bin): %w", err)
		}
	}
	c.bin = *bin

	if slices.Contains(tools, toolS3) {
		srv, msg, err := startS3(ctx, filepath.Join(c.work, "minio"), stderr)
		switch {
		case err != nil:
			return err
		case srv == nil:
			skip(msg)
			tools = slices.DeleteFunc(tools, func(t string) bool { return t == toolS3 })
		default:
			defer func() { err = errors.Join(err, srv.Close()) }()
			c.s3 = srv
		}
	}
	rep.Tools = tools
	if c.restic != "" {
		rep.Notes = append(rep.Notes, "restic: no restore-onto step (restic 0.14 restore rewrites whole files)")
	}
	if c.casync != "" {
		rep.Notes = append(rep.Notes, "casync: restore-onto is casync extract onto the existing file with --reflink=no (it seeds from the output; with reflinks on, casync 2 fails on ext4 with \"Stale file handle\")")
	}
	rep.Host = hostInfo(ctx, c)

	for r := 1; r <= *runs; r++ {
		for _, t := range tools {
			fmt.Fprintf(stderr, "casbench: run %d/%d %s\n", r, *runs, t)
			ss, err := runTool(ctx, c, t, r)
			rep.Samples = append(rep.Samples, ss...)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", r, t, err)
			}
		}
	}
	for _, t := range tools {
		for _, st := range stepNames {
			if m, ok := median(rep.Samples, t, st); ok {
				rep.Median = append(rep.Median, m)
			}
		}
	}
	rep.Ratios = ratios(rep.Median)

	if *jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write the JSON report: %w", err)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTable(stdout, rep)
	return nil
}

// stepCmd is one step to measure.
type stepCmd struct {
	name  string
	argv  []string
	env   []string // added to the environment
	out   string   // restored file to compare with v2.img ("" for a backup)
	setup func() error
}

// runTool runs every step of tool t in run r on fresh stores.
func runTool(ctx context.Context, c *config, t string, r int) ([]Sample, error) {
	base := filepath.Join(c.work, fmt.Sprintf("run%d-%s", r, t))
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(base, "out.img")
	target := filepath.Join(base, "target.img")
	ontoV1 := func() error { _, err := bench.SparseCopy(ctx, target, c.v1); return err }
	var (
		steps []stepCmd
		size  func() (bench.DirStats, error) // the store's size
		store = filepath.Join(base, "store")
	)
	size = func() (bench.DirStats, error) { return bench.StatDir(store) }

	switch t {
	case toolDir, toolS3:
		loc := "cas:" + store
		var env []string
		if t == toolS3 {
			prefix := fmt.Sprintf("casbench-%d-run%d", time.Now().UnixNano(), r)
			loc = "s3://" + c.s3.bucket + "/" + prefix
			env = c.s3.childEnv()
			size = func() (bench.DirStats, error) { return c.s3.stat(ctx, prefix) }
		}
		cache := filepath.Join(base, "cache")
		bf := func(state string, args ...string) []string {
			return append([]string{c.bin, "copy", "--json", "--cache-dir", cache, "--state-dir", filepath.Join(base, state)}, args...)
		}
		// Back up in the pair's block size (a restore takes the snapshot's).
		backup := func(state string, args ...string) []string {
			if c.blockSize > 0 {
				args = append([]string{"--block-size", fmt.Sprint(c.blockSize)}, args...)
			}
			return bf(state, args...)
		}
		steps = []stepCmd{
			{name: "backup-v1", argv: backup("state1", c.v1, loc+"#v1"), env: env},
			{name: "backup-v2", argv: backup("state2", c.v2, loc+"#v2"), env: env},
			{name: "restore-v2", argv: bf("state3", loc+"#v2", out), env: env, out: out},
			{name: "restore-onto", argv: bf("state4", loc+"#v2", target), env: env, out: target, setup: ontoV1},
		}
	case toolRestic:
		env := []string{"RESTIC_REPOSITORY=" + store, "RESTIC_PASSWORD=casbench",
			"RESTIC_CACHE_DIR=" + filepath.Join(base, "cache")}
		if err := runQuiet(ctx, env, c.restic, "init"); err != nil {
			return nil, err
		}
		rout := filepath.Join(base, "restore")
		steps = []stepCmd{
			{name: "backup-v1", argv: []string{c.restic, "backup", "--json", c.v1}, env: env},
			{name: "backup-v2", argv: []string{c.restic, "backup", "--json", c.v2}, env: env},
			// latest = the v2 backup; restic restores under TARGET/<absolute path>.
			{name: "restore-v2", argv: []string{c.restic, "restore", "latest", "--target", rout}, env: env,
				out: filepath.Join(rout, absPath(c.v2))},
		}
	case toolCasync:
		idx := func(v string) string { return filepath.Join(store, "..", v+".caibx") }
		cas := "--store=" + store
		steps = []stepCmd{
			{name: "backup-v1", argv: []string{c.casync, "make", cas, idx("v1"), c.v1}},
			{name: "backup-v2", argv: []string{c.casync, "make", cas, idx("v2"), c.v2}},
			{name: "restore-v2", argv: []string{c.casync, "extract", cas, "--seed-output=no", idx("v2"), out}, out: out},
			// casync uses an existing output as a seed (--seed-output=yes is the
			// default). Without --reflink=no, casync 2 fails on ext4 with
			// "Failed to run synchronizer: Stale file handle".
			{name: "restore-onto", argv: []string{c.casync, "extract", cas, "--reflink=no", idx("v2"), target}, out: target, setup: ontoV1},
		}
		// casync's store is the chunk directory plus its index files.
		size = func() (bench.DirStats, error) {
			s, err := bench.StatDir(store)
			for _, v := range []string{"v1", "v2"} {
				if fi, e := os.Stat(idx(v)); e == nil {
					s.Files++
					s.Bytes += fi.Size()
					s.Allocated += fi.Size()
				}
			}
			return s, err
		}
	}

	var ss []Sample
	for _, st := range steps {
		if st.setup != nil {
			if err := st.setup(); err != nil {
				return ss, err
			}
		}
		before, err := size()
		if err != nil {
			return ss, err
		}
		var reqBefore bench.RequestCounts
		if t == toolS3 {
			reqBefore = c.s3.proxy.Counts()
		}
		syscall.Sync()
		s, err := measure(ctx, c.limit, st.argv, st.env, t == toolDir || t == toolS3)
		if err != nil {
			return ss, fmt.Errorf("%s: %w", st.name, err)
		}
		s.Tool, s.Step, s.Run = t, st.name, r
		if t == toolS3 {
			d := c.s3.proxy.Counts().Sub(reqBefore)
			s.Requests = &d
		}
		if s.Store, err = size(); err != nil {
			return ss, err
		}
		s.Added = bench.DirStats{Files: s.Store.Files - before.Files, Bytes: s.Store.Bytes - before.Bytes,
			Allocated: s.Store.Allocated - before.Allocated}
		if st.out != "" {
			same := true
			if err := bench.SameContent(ctx, c.v2, st.out); err != nil {
				var de *bench.DiffError
				if !errors.As(err, &de) {
					return ss, err
				}
				same = false
				fmt.Fprintf(c.stderr, "casbench: %s %s run %d: restored file differs from v2.img: %v\n", t, st.name, r, err)
			}
			s.Identical = &same
			var res struct {
				Stats struct {
					Written *int64 `json:"written_blocks"`
				} `json:"stats"`
			}
			if s.Stats != nil && json.Unmarshal(s.Stats, &res) == nil {
				s.Written = res.Stats.Written
			}
			ss = append(ss, s)
			if !same {
				return ss, fmt.Errorf("%s: restored file %s differs from v2.img", st.name, st.out)
			}
			if err := os.Remove(st.out); err != nil {
				return ss, err
			}
			continue
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// runQuiet runs an unmeasured preparation command.
func runQuiet(ctx context.Context, env []string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

func measure(ctx context.Context, limit time.Duration, argv, env []string, keepJSON bool) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	u, err := bench.Measure(cmd)
	if err != nil {
		return Sample{}, fmt.Errorf("%w\n%s", err, errb.Bytes())
	}
	s := Sample{Argv: argv, Usage: u.JSON()}
	if b := bytes.TrimSpace(out.Bytes()); keepJSON && json.Valid(b) && len(b) > 0 {
		s.Stats = json.RawMessage(b)
	}
	return s, nil
}

// median returns the sample of one tool and step with the median wall
// time, with CPU time and peak RSS replaced by their own medians.
func median(ss []Sample, tool, step string) (Sample, bool) {
	var mine []Sample
	for _, s := range ss {
		if s.Tool == tool && s.Step == step {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return Sample{}, false
	}
	us := make([]bench.UsageJSON, len(mine))
	for i, s := range mine {
		us[i] = s.Usage
	}
	u, at := bench.MedianUsage(us)
	m := mine[at]
	m.Usage = u
	return m, true
}

// ratios compares restic and casync with blockferry-dir: wall time of each
// step, and bytes stored after both backups and added by the incremental.
func ratios(med []Sample) []Ratio {
	find := func(tool, step string) *Sample {
		for i := range med {
			if med[i].Tool == tool && med[i].Step == step {
				return &med[i]
			}
		}
		return nil
	}
	var rs []Ratio
	for _, peer := range []string{toolRestic, toolCasync} {
		for _, st := range stepNames {
			a, b := find(toolDir, st), find(peer, st)
			if a != nil && b != nil && a.Usage.WallSeconds > 0 {
				rs = append(rs, Ratio{peer, st + " wall", b.Usage.WallSeconds / a.Usage.WallSeconds})
			}
		}
		a, b := find(toolDir, "backup-v2"), find(peer, "backup-v2")
		if a != nil && b != nil {
			if a.Store.Bytes > 0 {
				rs = append(rs, Ratio{peer, "bytes stored after v1+v2", float64(b.Store.Bytes) / float64(a.Store.Bytes)})
			}
			if a.Added.Bytes > 0 {
				rs = append(rs, Ratio{peer, "bytes added by v2", float64(b.Added.Bytes) / float64(a.Added.Bytes)})
			}
		}
	}
	return rs
}

func hostInfo(ctx context.Context, c *config) map[string]string {
	h := map[string]string{
		"go":    runtime.Version(),
		"cpus":  fmt.Sprint(runtime.NumCPU()),
		"os":    runtime.GOOS + "/" + runtime.GOARCH,
		"start": time.Now().UTC().Format(time.RFC3339),
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h["loadavg_start"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	version := func(key string, argv ...string) {
		if argv[0] == "" {
			return
		}
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output(); err == nil {
			h[key] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	version("restic", c.restic, "version")
	version("casync", c.casync, "--version")
	if c.s3 != nil {
		h["s3"] = c.s3.desc
	}
	return h
}

func printTable(w io.Writer, rep *Report) {
	wl, cn := rep.Info.Workload, rep.Info.Counts
	fmt.Fprintf(w, "pair %s: %s volume, %s blocks, %d blocks (%d unique, %d dup, %d zero), %d changed = %s; seed %d\n",
		rep.Dir, bench.FormatSize(wl.Size), bench.FormatSize(int64(wl.BlockSize)), cn.Blocks, cn.Unique, cn.Dup, cn.Zero,
		cn.Changed, bench.FormatSize(rep.ChangedSize), wl.Seed)
	fmt.Fprintf(w, "host: %s, %s CPUs, %s, kernel %s, load average at start %s\n", rep.Host["cpu"], rep.Host["cpus"], rep.Host["go"], rep.Host["kernel"], rep.Host["loadavg_start"])
	for _, k := range []string{"restic", "casync", "s3"} {
		if v := rep.Host[k]; v != "" {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, "load average at end: %s\n", strings.Join(strings.Fields(string(b))[:3], " "))
	}
	fmt.Fprintf(w, "page cache: %s\n", rep.PageCache)
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	for _, s := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", s)
	}
	fmt.Fprintf(w, "\nmedian of %d run(s); store = size after the step (sum of object sizes), added = by this step\n", rep.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tool\tstep\twall s\tCPU s\tpeak RSS\twchar\tstore\tstore du\tadded\tobjects\tnew objects\trequests\tidentical\t\n")
	for _, s := range rep.Median {
		req, ident := "-", "-"
		if s.Requests != nil {
			req = formatRequests(*s.Requests)
		}
		if s.Identical != nil {
			ident = fmt.Sprint(*s.Identical)
			if s.Written != nil {
				ident += fmt.Sprintf(" (%d blocks written)", *s.Written)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t\n", s.Tool, s.Step,
			s.Usage.WallSeconds, s.Usage.CPUSeconds, bench.FormatSize(s.Usage.MaxRSS), bench.FormatSize(s.Usage.WChar),
			bench.FormatSize(s.Store.Bytes), bench.FormatSize(s.Store.Allocated), bench.FormatSize(s.Added.Bytes),
			s.Store.Files, s.Added.Files, req, ident)
	}
	tw.Flush()
	if len(rep.Ratios) > 0 {
		fmt.Fprintf(w, "\npeer / blockferry-dir (above 1: blockferry took less)\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, r := range rep.Ratios {
			fmt.Fprintf(tw, "%s\t%s\t%.2fx\t\n", r.Peer, r.Figure, r.Value)
		}
		tw.Flush()
	}
}

// formatRequests prints "N (GET a, PUT b, ...)".
func formatRequests(c bench.RequestCounts) string {
	var parts []string
	for _, m := range []string{"GET", "HEAD", "PUT", "POST", "DELETE"} {
		if n := c.ByMethod[m]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", m, n))
		}
	}
	if n := c.ByStatus["4xx"] + c.ByStatus["5xx"] + c.ByStatus["error"]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d not 2xx", n))
	}
	return fmt.Sprintf("%d (%s)", c.Total, strings.Join(parts, ", "))
}

// s3Server is the S3 endpoint the S3 steps use, behind a counting proxy.
type s3Server struct {
	desc       string
	bucket     string
	key, sec   string
	proxy      *bench.CountingProxy
	proxyURL   string
	client     *awss3.Client // straight to the server: not counted
	srv        *http.Server
	minio      *exec.Cmd
	minioExit  chan error
	minioLog   *os.File
	proxyError chan error
}

// minioBinary finds a MinIO server binary, or returns "".
func minioBinary() string {
	if p := os.Getenv("BLOCKFERRY_MINIO"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		m, _ := filepath.Glob(filepath.Join(home, ".cache", "blockferry", "bin", "minio-*"))
		slices.Sort(m)
		m = append(slices.Clone(m), filepath.Join(home, ".cache", "blockferry", "bin", "minio"))
		for i := len(m) - 1; i >= 0; i-- {
			if fi, err := os.Stat(m[i]); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return m[i]
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	return ""
}

// startS3 returns the S3 server to use: BLOCKFERRY_S3_ENDPOINT, or a MinIO
// started with its data in dataDir. It returns nil and a message when there
// is neither.
func startS3(ctx context.Context, dataDir string, stderr io.Writer) (*s3Server, string, error) {
	s := &s3Server{bucket: "casbench", key: os.Getenv("AWS_ACCESS_KEY_ID"), sec: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	if b := os.Getenv("BLOCKFERRY_S3_BUCKET"); b != "" {
		s.bucket = b
	}
	endpoint := os.Getenv("BLOCKFERRY_S3_ENDPOINT")
	if endpoint != "" {
		s.desc = "server at BLOCKFERRY_S3_ENDPOINT " + endpoint
	} else {
		bin := minioBinary()
		if bin == "" {
			return nil, "blockferry-s3: no S3 server: set BLOCKFERRY_S3_ENDPOINT, or BLOCKFERRY_MINIO to a MinIO binary (scripts/test.sh builds one into ~/.cache/blockferry/bin)", nil
		}
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, "", err
		}
		s.key, s.sec = "casbench", "casbench-secret"
		s.minioLog, err = os.Create(filepath.Join(dataDir, "..", "minio.log"))
		if err != nil {
			return nil, "", err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s.minio = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", "127.0.0.1:0", dataDir)
		s.minio.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.key, "MINIO_ROOT_PASSWORD="+s.sec)
		s.minio.Stdout, s.minio.Stderr = s.minioLog, s.minioLog
		if err := s.minio.Start(); err != nil {
			return nil, "", fmt.Errorf("start MinIO %s: %w", bin, err)
		}
		s.minioExit = make(chan error, 1)
		go func() { s.minioExit <- s.minio.Wait() }()
		endpoint = "http://" + addr
		s.desc = fmt.Sprintf("MinIO %s on %s, data on the same disk, started by casbench", filepath.Base(bin), addr)
		fmt.Fprintln(stderr, "casbench: started", s.desc)
		if err := s.waitLive(ctx, endpoint); err != nil {
			return nil, "", errors.Join(err, s.Close())
		}
	}
	if s.key == "" {
		return nil, "", errors.New("BLOCKFERRY_S3_ENDPOINT is set but AWS_ACCESS_KEY_ID is not: give the server's credentials")
	}
	s.client = awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.sec}, nil
		}),
	})
	_, err := s.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return nil, "", errors.Join(fmt.Errorf("create bucket %s on %s: %w", s.bucket, endpoint, err), s.Close())
	}
	if s.proxy, err = bench.NewCountingProxy(endpoint); err != nil {
		return nil, "", errors.Join(err, s.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", errors.Join(err, s.Close())
	}
	s.proxyURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.proxy, ReadHeaderTimeout: time.Minute}
	s.proxyError = make(chan error, 1)
	go func() { s.proxyError <- s.srv.Serve(ln) }()
	return s, "", nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *s3Server) waitLive(ctx context.Context, endpoint string) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.minioExit:
			s.minioExit <- err
			return fmt.Errorf("MinIO exited at start (%v); see %s", err, s.minioLog.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("MinIO not live at %s after 90 s; see %s", endpoint, s.minioLog.Name())
}

// childEnv points a blockferry child at the proxy.
func (s *s3Server) childEnv() []string {
	return []string{"AWS_ENDPOINT_URL_S3=" + s.proxyURL, "AWS_ACCESS_KEY_ID=" + s.key, "AWS_SECRET_ACCESS_KEY=" + s.sec,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
}

// stat sums the objects under prefix (straight to the server, not counted).
func (s *s3Server) stat(ctx context.Context, prefix string) (bench.DirStats, error) {
	var d bench.DirStats
	p := prefix + "/"
	pg := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &p})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return d, fmt.Errorf("list s3://%s/%s: %w", s.bucket, p, err)
		}
		for _, o := range page.Contents {
			d.Files++
			d.Bytes += aws.ToInt64(o.Size)
		}
	}
	d.Allocated = d.Bytes
	return d, nil
}

// Close stops the proxy and the MinIO this process started.
func (s *s3Server) Close() error {
	var errs []error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.srv.Shutdown(ctx))
		cancel()
		if err := <-s.proxyError; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if s.minio != nil && s.minio.Process != nil {
		_ = s.minio.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.minioExit:
		case <-time.After(10 * time.Second):
			_ = s.minio.Process.Kill()
			<-s.minioExit
		}
		errs = append(errs, s.minioLog.Close())
	}
	return errors.Join(errs...)
}
