// Command copybench measures replicating v2.img onto a copy of v1.img with
// blockferry and with rsync, from one pair made by genpair (see
// bench/README.md):
//
//	go run ./bench/cmd/copybench -dir DIR [-runs 3] [-methods live,base,rsync] [-json]
//
// For every run and method it resets DIR/target.img to a sparse copy of
// v1.img, syncs, runs the method as a child process, and measures the
// child's wall time, CPU time, peak RSS (wait4 ru_maxrss) and I/O counters
// (/proc/<pid>/io, children included), then checks that the target is
// byte-identical to v2.img. Methods:
//
//	live         blockferry copy v2.img target.img        (no base: source and target hashed live)
//	base         blockferry copy --base v1.bfm v2.img target.img (v1.bfm made once by blockferry hash)
//	rsync        rsync --inplace --no-whole-file --ignore-times v2.img target.img
//	rsync-fsync  the same with --fsync, durable like blockferry's commit
//
// --ignore-times stops rsync's quick check from skipping the file when the
// target's size and mtime happen to match v2.img's.
//
// The page cache is not dropped (that needs root and disturbs other work):
// the images are read from memory, so read_bytes is near zero and the
// timings are CPU- and write-bound. The output says so.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/blockferry/blockferry/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "copybench:", err)
		}
		os.Exit(1)
	}
}

// method is one way of bringing the target from v1 to v2.
type method struct {
	Name string
	argv func(c *config, target, stateDir string) []string
}

type config struct {
	dir, bin, rsync string
	v1, v2, bfm     string
}

var methods = []method{
	{"live", func(c *config, target, state string) []string {
		return []string{c.bin, "copy", "--json", "--state-dir", state, c.v2, target}
	}},
	{"base", func(c *config, target, state string) []string {
		return []string{c.bin, "copy", "--json", "--state-dir", state, "--base", c.bfm, c.v2, target}
	}},
	{"rsync", func(c *config, target, _ string) []string {
		return []string{c.rsync, "--inplace", "--no-whole-file", "--ignore-times", c.v2, target}
	}},
	{"rsync-fsync", func(c *config, target, _ string) []string {
		return []string{c.rsync, "--inplace", "--no-whole-file", "--ignore-times", "--fsync", c.v2, target}
	}},
}

// Sample is one measured run of one method.
type Sample struct {
	Method    string          `json:"method"`
	Run       int             `json:"run"`
	Argv      []string        `json:"argv"`
	Usage     bench.UsageJSON `json:"usage"`
	Identical bool            `json:"identical"`
	Stats     json.RawMessage `json:"blockferry,omitempty"` // blockferry's --json output
}

// Report is the whole result, printed with -json.
type Report struct {
	Dir         string             `json:"dir"`
	Info        bench.Info         `json:"info"`
	Host        map[string]string  `json:"host"`
	PageCache   string             `json:"page_cache"`
	Hash        *Sample            `json:"hash_v1,omitempty"`
	Samples     []Sample           `json:"samples"`
	Median      map[string]Sample  `json:"median"`
	SpeedupVs   string             `json:"speedup_vs,omitempty"`
	Speedup     map[string]float64 `json:"speedup,omitempty"`
	Skipped     []string           `json:"skipped,omitempty"`
	ChangedSize int64              `json:"changed_bytes"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("copybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir       = fs.String("dir", "", "directory holding v1.img, v2.img and workload.json from genpair (target.img and v1.bfm are written there)")
		runs      = fs.Int("runs", 3, "runs per method; the table shows medians")
		useRsync  = fs.Bool("rsync", true, "include the rsync columns (skipped with a message when rsync is not installed)")
		methodsF  = fs.String("methods", "live,base,rsync,rsync-fsync", "comma-separated methods: live, base, rsync, rsync-fsync")
		bin       = fs.String("bin", "", "blockferry binary to use (default: go build ./cmd/blockferry into a temporary directory)")
		jsonOut   = fs.Bool("json", false, "print the full report as JSON instead of a table")
		jsonFile  = fs.String("json-out", "", "also write the full JSON report to `FILE`")
		keep      = fs.Bool("keep", false, "keep target.img and v1.bfm afterwards")
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
	c := &config{dir: *dir,
		v1: filepath.Join(*dir, bench.V1Name), v2: filepath.Join(*dir, bench.V2Name),
		bfm: filepath.Join(*dir, "v1.bfm")}
	rep := &Report{Dir: *dir, Info: info, Median: map[string]Sample{},
		ChangedSize: info.Counts.Changed * int64(info.Workload.BlockSize),
		PageCache: "not dropped: v1.img and v2.img are read from the page cache, so read_bytes is near 0; " +
			"write_bytes counts bytes dirtied for write-back at write time"}

	var chosen []method
	for _, name := range strings.Split(*methodsF, ",") {
		k := slices.IndexFunc(methods, func(m method) bool { return m.Name == strings.TrimSpace(name) })
		if k < 0 {
			return fmt.Errorf("unknown method %q: want live, base, rsync or rsync-fsync", name)
		}
		chosen = append(chosen, methods[k])
	}
	if wantsRsync := slices.ContainsFunc(chosen, func(m method) bool { return strings.HasPrefix(m.Name, "rsync") }); wantsRsync {
		p, err := exec.LookPath("rsync")
		switch {
		case !*useRsync:
			rep.Skipped = append(rep.Skipped, "rsync: -rsync=false")
		case err != nil:
			rep.Skipped = append(rep.Skipped, "rsync: not installed (apt-get install rsync); rsync columns skipped")
		default:
			c.rsync = p
		}
		if c.rsync == "" {
			chosen = slices.DeleteFunc(chosen, func(m method) bool { return strings.HasPrefix(m.Name, "rsync") })
			fmt.Fprintln(stderr, "copybench: skipping", rep.Skipped[len(rep.Skipped)-1])
		}
	}

	if *bin == "" {
		tmp, err := os.MkdirTemp("", "copybench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*bin = filepath.Join(tmp, "blockferry")
		fmt.Fprintln(stderr, "copybench: go build -o", *bin, "./cmd/blockferry")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/blockferry/blockferry/cmd/blockferry")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the blockferry CLI (or pass -bin): %w", err)
		}
	}
	c.bin = *bin
	rep.Host = hostInfo(ctx, c)

	target := filepath.Join(*dir, "target.img")
	state := filepath.Join(*dir, "state")
	if !*keep {
		defer os.Remove(target)
		defer os.RemoveAll(state)
		defer os.Remove(c.bfm)
	}

	if slices.ContainsFunc(chosen, func(m method) bool { return m.Name == "base" }) {
		fmt.Fprintln(stderr, "copybench: blockferry hash v1.img")
		argv := []string{c.bin, "hash", "--json", "-o", c.bfm, c.v1}
		s, err := measure(ctx, *childTime, "hash", 0, argv)
		if err != nil {
			return err
		}
		s.Identical = true
		rep.Hash = &s
	}

	for r := 1; r <= *runs; r++ {
		for _, m := range chosen {
			if err := reset(ctx, c.v1, target, state); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "copybench: run %d/%d %s\n", r, *runs, m.Name)
			s, err := measure(ctx, *childTime, m.Name, r, m.argv(c, target, state))
			if err != nil {
				return err
			}
			if err := bench.SameContent(ctx, c.v2, target); err != nil {
				var de *bench.DiffError
				if !errors.As(err, &de) {
					return err
				}
				fmt.Fprintf(stderr, "copybench: %s run %d: target differs from v2.img: %v\n", m.Name, r, err)
			} else {
				s.Identical = true
			}
			rep.Samples = append(rep.Samples, s)
		}
	}
	for _, m := range chosen {
		rep.Median[m.Name] = median(rep.Samples, m.Name)
	}
	for _, ref := range []string{"rsync", "rsync-fsync"} {
		if r, ok := rep.Median[ref]; ok {
			rep.SpeedupVs = ref
			rep.Speedup = map[string]float64{}
			for _, m := range chosen {
				rep.Speedup[m.Name] = r.Usage.WallSeconds / rep.Median[m.Name].Usage.WallSeconds
			}
			break
		}
	}
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
	printTable(stdout, rep, chosen, *runs)
	for _, s := range rep.Samples {
		if !s.Identical {
			return fmt.Errorf("%s run %d left a target that differs from v2.img", s.Method, s.Run)
		}
	}
	return nil
}

// reset makes target a fresh sparse copy of v1, removes blockferry's saved
// state (so the live run has no base), and syncs so that write-back of the
// copy does not land inside the measured run.
func reset(ctx context.Context, v1, target, state string) error {
	if err := os.RemoveAll(state); err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	if _, err := bench.SparseCopy(ctx, target, v1); err != nil {
		return err
	}
	syscall.Sync()
	return nil
}

func measure(ctx context.Context, limit time.Duration, name string, r int, argv []string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	u, err := bench.Measure(cmd)
	if err != nil {
		return Sample{}, fmt.Errorf("%w\n%s", err, errb.Bytes())
	}
	s := Sample{Method: name, Run: r, Argv: argv, Usage: u.JSON()}
	if b := bytes.TrimSpace(out.Bytes()); json.Valid(b) && len(b) > 0 {
		s.Stats = json.RawMessage(b)
	}
	return s, nil
}

// median returns, for one method, the sample with the median wall time,
// with every other counter replaced by its own median.
func median(ss []Sample, name string) Sample {
	var mine []Sample
	for _, s := range ss {
		if s.Method == name {
			mine = append(mine, s)
		}
	}
	us := make([]bench.UsageJSON, len(mine))
	for i, s := range mine {
		us[i] = s.Usage
	}
	u, at := bench.MedianUsage(us)
	m := mine[at]
	m.Usage = u
	m.Identical = !slices.ContainsFunc(mine, func(s Sample) bool { return !s.Identical })
	return m
}

func hostInfo(ctx context.Context, c *config) map[string]string {
	h := map[string]string{
		"go":    runtime.Version(),
		"cpus":  fmt.Sprint(runtime.NumCPU()),
		"os":    runtime.GOOS + "/" + runtime.GOARCH,
		"start": time.Now().UTC().Format(time.RFC3339),
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
	if c.rsync != "" {
		if out, err := exec.CommandContext(ctx, c.rsync, "--version").Output(); err == nil {
			h["rsync"] = strings.SplitN(string(out), "\n", 2)[0]
		}
	}
	return h
}

func printTable(w io.Writer, rep *Report, chosen []method, runs int) {
	wl, cn := rep.Info.Workload, rep.Info.Counts
	fmt.Fprintf(w, "pair %s: %s volume, %s blocks, %d blocks (%d unique, %d dup, %d zero, %d outside data), %d changed = %s; seed %d\n",
		rep.Dir, bench.FormatSize(wl.Size), bench.FormatSize(int64(wl.BlockSize)), cn.Blocks, cn.Unique, cn.Dup, cn.Zero, cn.Outside,
		cn.Changed, bench.FormatSize(rep.ChangedSize), wl.Seed)
	fmt.Fprintf(w, "host: %s, %s CPUs, %s, kernel %s, %s\n", rep.Host["cpu"], rep.Host["cpus"], rep.Host["go"], rep.Host["kernel"], rep.Host["rsync"])
	fmt.Fprintf(w, "page cache: %s\n", rep.PageCache)
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	if h := rep.Hash; h != nil {
		fmt.Fprintf(w, "blockferry hash v1.img (once, for base): %.2fs wall, %.2fs CPU, peak RSS %s\n",
			h.Usage.WallSeconds, h.Usage.CPUSeconds, bench.FormatSize(h.Usage.MaxRSS))
	}
	fmt.Fprintf(w, "\nmedian of %d runs\n", runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	speedHdr := ""
	if rep.SpeedupVs != "" {
		speedHdr = "\tvs " + rep.SpeedupVs
	}
	fmt.Fprintf(tw, "method\twall s\tCPU s\tpeak RSS\tread_bytes\twrite_bytes\trchar\twchar\tidentical%s\t\n", speedHdr)
	for _, m := range chosen {
		s := rep.Median[m.Name]
		u := s.Usage
		sp := ""
		if rep.SpeedupVs != "" {
			sp = fmt.Sprintf("\t%.2fx", rep.Speedup[m.Name])
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%v%s\t\n", m.Name, u.WallSeconds, u.CPUSeconds,
			bench.FormatSize(u.MaxRSS), bench.FormatSize(u.ReadBytes), bench.FormatSize(u.WriteBytes),
			bench.FormatSize(u.RChar), bench.FormatSize(u.WChar), s.Identical, sp)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nchanged blocks: %s; write_bytes above that is written beyond the changed blocks (manifest, journal, metadata)\n",
		bench.FormatSize(rep.ChangedSize))
	for _, m := range chosen {
		s := rep.Median[m.Name]
		var st struct {
			Plan  string `json:"plan"`
			Stats struct {
				Written      int64 `json:"written_blocks"`
				Unchanged    int64 `json:"skipped_unchanged_blocks"`
				BytesWritten int64 `json:"bytes_written"`
				BytesRead    int64 `json:"bytes_read"`
			} `json:"stats"`
		}
		if s.Stats != nil && json.Unmarshal(s.Stats, &st) == nil {
			fmt.Fprintf(w, "%s: plan %s, %d blocks written (%s), %d unchanged skipped, %s read by the engine\n",
				m.Name, st.Plan, st.Stats.Written, bench.FormatSize(st.Stats.BytesWritten), st.Stats.Unchanged, bench.FormatSize(st.Stats.BytesRead))
		}
	}
}
