package replicate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// The kill soak copies a file-backed volume in a child process (this test
// binary re-executed), kills it with SIGKILL at a random moment, runs the
// same copy again to completion, and compares the bytes.
//
//	go test ./replicate -run TestKillSoak -v                                # 20 trials
//	BLOCKFERRY_SOAK_TRIALS=500 go test ./replicate -run TestKillSoak -timeout 30m
const (
	soakChildEnv = "BLOCKFERRY_SOAK_CHILD"
	soakBS       = 64 << 10
	soakBlocks   = 128 // 8 MiB
)

func TestMain(m *testing.M) {
	if os.Getenv(soakChildEnv) == "1" {
		if err := soakChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// slowSink delays each write, so that a kill lands mid-copy.
type slowSink struct {
	*sink.File
	delay time.Duration
}

func (s slowSink) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	time.Sleep(s.delay)
	return s.File.WriteBlock(ctx, i, b, d)
}

// soakCopy is the copy both the child and the parent run. With a base
// manifest path it runs plan hash-base, without one live-target.
func soakCopy(srcPath, dstPath, journal, basePath string, delay time.Duration) (*Result, error) {
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: soakBS})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	f, err := sink.OpenFile(dstPath, src.Geometry(), sink.Options{})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts := Options{Journal: journal, Concurrency: 4}
	if basePath != "" {
		if opts.Base, err = blockdiff.ReadManifestFile(basePath); err != nil {
			return nil, err
		}
	}
	var dst blockdiff.Sink = f
	if delay > 0 {
		dst = slowSink{f, delay}
	}
	return Run(context.Background(), src, dst, opts)
}

func soakChild() error {
	fmt.Println("start") // the parent times its kill from here
	_, err := soakCopy(os.Getenv("SOAK_SRC"), os.Getenv("SOAK_DST"), os.Getenv("SOAK_JOURNAL"), os.Getenv("SOAK_BASE"), 5*time.Millisecond)
	fmt.Println("done") // (process exit can take long under -race)
	return err
}

func soakVolume(seed uint64, zeroEvery int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, soakBlocks*soakBS)
	for i := range soakBlocks {
		blk := b[i*soakBS : (i+1)*soakBS]
		if i%zeroEvery == 0 {
			continue
		}
		for j := 0; j < len(blk); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				blk[j+k] = byte(v >> (8 * k))
			}
		}
	}
	return b
}

func TestKillSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("kill soak skipped in -short mode")
	}
	trials := 20
	if s := os.Getenv("BLOCKFERRY_SOAK_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("BLOCKFERRY_SOAK_TRIALS=%q: want a positive number", s)
		}
		trials = n
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := soakVolume(1, 7)
	neu := soakVolume(1, 5)
	for i := 0; i < soakBlocks; i += 3 { // a third of the blocks keep the old content
		copy(neu[i*soakBS:(i+1)*soakBS], old[i*soakBS:(i+1)*soakBS])
	}
	srcPath := filepath.Join(dir, "src.img")
	if err := os.WriteFile(srcPath, neu, 0o644); err != nil {
		t.Fatal(err)
	}
	basePath := filepath.Join(dir, "base.manifest")
	bm := manifestOfBS(t, old, soakBS)
	if err := blockdiff.WriteManifestFile(basePath, bm); err != nil {
		t.Fatal(err)
	}
	dstPath := filepath.Join(dir, "dst.img")
	journal := filepath.Join(dir, "copy.journal")
	// child starts a copy and returns once it is about to call Run.
	child := func(base string) (*exec.Cmd, *bytes.Buffer, *bufio.Reader) {
		os.Remove(journal)
		if err := os.WriteFile(dstPath, old, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), soakChildEnv+"=1", "SOAK_SRC="+srcPath, "SOAK_DST="+dstPath, "SOAK_JOURNAL="+journal, "SOAK_BASE="+base)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		line, err := rd.ReadString('\n')
		if err != nil || line != "start\n" {
			cmd.Wait()
			t.Fatalf("child did not start: %q %v\n%s", line, err, stderr.String())
		}
		return cmd, &stderr, rd
	}
	// Calibrate: how long an uninterrupted copy takes on this machine now,
	// so that kills land anywhere in it.
	cmd, stderr, rd := child(basePath)
	start := time.Now()
	line, _ := rd.ReadString('\n')
	span := time.Since(start)
	if err := cmd.Wait(); err != nil || line != "done\n" {
		t.Fatalf("calibration child: %v\n%s", err, stderr)
	}
	t.Logf("an uninterrupted copy takes %v", span)

	rng := rand.New(rand.NewPCG(42, 42))
	var killedMid, resumedTrials int
	for trial := range trials {
		base := basePath
		if trial%2 == 1 {
			base = "" // live-target
		}
		cmd, stderr, _ := child(base)
		delay := time.Duration(rng.Int64N(int64(span)))
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		if werr == nil {
			t.Logf("trial %d: child finished before the kill at %v", trial, delay)
		} else if ee, ok := werr.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("trial %d: child failed on its own: %v\n%s", trial, werr, stderr.String())
		} else {
			killedMid++
		}
		res, err := soakCopy(srcPath, dstPath, journal, base, 0)
		if err != nil {
			t.Fatalf("trial %d (kill at %v): rerun: %v", trial, delay, err)
		}
		if res.Stats.Resumed > 0 {
			resumedTrials++
		}
		got, err := os.ReadFile(dstPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, neu) {
			t.Fatalf("trial %d (kill at %v, plan %s): target differs from the source after resume", trial, delay, res.Plan)
		}
		if _, err := os.Stat(journal); !os.IsNotExist(err) {
			t.Fatalf("trial %d: journal left after success: %v", trial, err)
		}
	}
	t.Logf("%d trials: %d killed mid-run, %d resumed from a journal", trials, killedMid, resumedTrials)
	if trials >= 10 && resumedTrials == 0 {
		t.Errorf("no trial resumed from a journal: the kill delays miss the copy")
	}
}

func manifestOfBS(t testing.TB, data []byte, bs int) *blockdiff.Manifest {
	t.Helper()
	g := blockdiff.Geometry{Size: int64(len(data)), BlockSize: bs}
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < g.Blocks(); i++ {
		b := data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]
		k := blockdiff.Data
		if isZero(b) {
			k = blockdiff.Zero
		}
		if err := m.Set(i, k, sum256(b)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
