package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHashMatchesIndependentSHA256 checks hash's per-block digests against
// Python's hashlib over the same image and against crypto/sha256.
func TestHashMatchesIndependentSHA256(t *testing.T) {
	dir := t.TempDir()
	img := newImage(1, 40, 1000).write(t, filepath.Join(dir, "disk.img"))
	data := readFile(t, img)
	bfm := filepath.Join(dir, "disk.bfm")

	var hr hashResult
	mustJSON(t, &hr, "hash", img, "-o", bfm, "--block-size", "64KiB")
	if hr.Geometry.Blocks != 41 || hr.Geometry.Size != int64(len(data)) || hr.Geometry.BlockSize != testBS {
		t.Fatalf("geometry: got %+v, want 41 blocks, %d bytes, block size %d", hr.Geometry, len(data), testBS)
	}
	var ir inspectResult
	mustJSON(t, &ir, "inspect", bfm, "--blocks")
	if ir.ID != hr.ID {
		t.Errorf("inspect id %s, hash id %s: want equal", ir.ID, hr.ID)
	}
	fileSum := sha256.Sum256(readFile(t, bfm))
	if got := hex.EncodeToString(fileSum[:]); got != hr.ID {
		t.Errorf("manifest id: got %s, want sha256 of the file %s", hr.ID, got)
	}
	got := make([]string, len(ir.Blocks))
	for i, b := range ir.Blocks {
		if b.Index != int64(i) {
			t.Fatalf("block %d listed with index %d", i, b.Index)
		}
		got[i] = b.Digest
	}

	want := blockSHA(data, testBS)
	compare := func(name string, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %d digests, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: block %d: got %s, want %s", name, i, got[i], want[i])
			}
		}
	}
	compare("crypto/sha256", want)

	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 not found and CI=true: %v", err)
		}
		t.Skipf("python3 not found, skipping the hashlib cross-check: %v", err)
	}
	script := `import hashlib, sys
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(int(sys.argv[2]))
        if not b:
            break
        print(hashlib.sha256(b).hexdigest())
`
	out, err := exec.Command(python, "-c", script, img, strconv.Itoa(testBS)).Output()
	if err != nil {
		t.Fatalf("python3 hashlib: %v", err)
	}
	compare("python3 hashlib", strings.Fields(string(out)))

	// Kinds: every all-zero block is zero or hole, every other one data.
	for i, b := range ir.Blocks {
		off := i * testBS
		blk := data[off:min(off+testBS, len(data))]
		wantData := bytes.ContainsFunc(blk, func(r rune) bool { return r != 0 })
		if isData := b.Kind == "data"; isData != wantData {
			t.Errorf("block %d: kind %s, but has non-zero bytes: %v", i, b.Kind, wantData)
		}
	}
}

func TestHashHumanSummary(t *testing.T) {
	dir := t.TempDir()
	img := newImage(2, 16, 0).write(t, filepath.Join(dir, "a.img"))
	out := mustCLI(t, "hash", img, "-o", filepath.Join(dir, "a.bfm"))
	for _, want := range []string{"hashed", "data", "zero", "holes", "a.bfm", "id "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not mention %q:\n%s", want, out)
		}
	}
}

// expectedDiff counts by brute force what changed from a to b.
func expectedDiff(a, b []byte, bs int) (unchanged, changed, zeroed, zeroTarget, distinct, moveBytes int64) {
	seen := map[[32]byte]bool{}
	isZero := func(p []byte) bool { return !bytes.ContainsFunc(p, func(r rune) bool { return r != 0 }) }
	for off := 0; off < len(b); off += bs {
		tb := b[off:min(off+bs, len(b))]
		var ab []byte
		if off < len(a) {
			ab = a[off:min(off+bs, len(a))]
		}
		baseZero := ab == nil || isZero(ab)
		switch {
		case isZero(tb) && baseZero, ab != nil && bytes.Equal(ab, tb):
			unchanged++
		case isZero(tb):
			zeroed++
		default:
			changed++
			d := sha256.Sum256(tb)
			if !seen[d] {
				seen[d] = true
				distinct++
				moveBytes += int64(len(tb))
			}
		}
		if isZero(tb) {
			zeroTarget++
		}
	}
	return
}

// v1v2 returns two related images: v2 changes some of v1's blocks to new
// content, to content found elsewhere, and to zeros, and writes into v1's
// holes.
func v1v2() (*image, *image) {
	v1 := newImage(7, 48, 3000)
	v2 := v1.clone()
	fresh := newImage(99, 48, 3000)
	for _, i := range []int{0, 5, 11, 30, 40} {
		v2.blocks[i] = fresh.blocks[i+1] // new content
	}
	v2.blocks[13] = fresh.blocks[6] // same new content twice: one distinct
	v2.blocks[15] = fresh.blocks[6]
	v2.blocks[2] = v1.blocks[20] // content the volume has elsewhere
	v2.blocks[8] = make([]byte, testBS)
	v2.blocks[9] = nil               // zeroed by a hole
	v2.blocks[24] = fresh.blocks[2]  // written into a hole
	v2.blocks[48] = fresh.blocks[48] // short last block changed
	return v1, v2
}

func TestDiffCountsMatchBruteForce(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	unchanged, changed, zeroed, zeroTarget, distinct, move := expectedDiff(v1.bytes(), v2.bytes(), testBS)

	ma, mb := filepath.Join(dir, "v1.bfm"), filepath.Join(dir, "v2.bfm")
	mustCLI(t, "hash", a, "-o", ma, "--block-size", "64KiB")
	mustCLI(t, "hash", b, "-o", mb, "--block-size", "64KiB")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"images", []string{"diff", a, b, "--block-size", "64KiB"}},
		{"manifests", []string{"diff", ma, mb}},
		{"manifest and image", []string{"diff", ma, b}},
		{"image and manifest", []string{"diff", "file:" + a, mb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r diffResult
			mustJSON(t, &r, tc.args...)
			st := r.Stats
			checks := []struct {
				name      string
				got, want int64
			}{
				{"blocks", st.Blocks, int64(len(v2.blocks))},
				{"unchanged", st.Unchanged, unchanged},
				{"changed", st.Changed, changed},
				{"zeroed", st.Zeroed, zeroed},
				{"zeros+holes", st.Zeros + st.Holes, zeroTarget},
				{"distinct", st.Distinct, distinct},
				{"bytes", st.Bytes, move},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
				}
			}
		})
	}
	out := mustCLI(t, "diff", ma, mb)
	for _, want := range []string{"unchanged", "changed", "zeroed", "holes", "distinct", "to move"} {
		if !strings.Contains(out, want) {
			t.Errorf("human diff output does not mention %q:\n%s", want, out)
		}
	}
}

func TestCopyIncrementalAndVerify(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	dst := filepath.Join(dir, "target.img")

	var r1 copyResult
	mustJSON(t, &r1, "copy", a, dst, "--block-size", "64KiB")
	if !bytes.Equal(readFile(t, dst), v1.bytes()) {
		t.Fatalf("after copy v1: target differs from v1")
	}
	if r1.BaseHow != "" {
		t.Errorf("first copy: base_from %q, want none", r1.BaseHow)
	}
	if _, err := os.Stat(dst + ".bfm"); err != nil {
		t.Fatalf("first copy saved no manifest beside the target: %v", err)
	}

	var r2 copyResult
	mustJSON(t, &r2, "copy", b, dst)
	if !bytes.Equal(readFile(t, dst), v2.bytes()) {
		t.Fatalf("after copy v2: target differs from v2")
	}
	if r2.BaseHow != "saved" || r2.Base != dst+".bfm" {
		t.Errorf("incremental copy: base %q from %q, want %q from %q", r2.Base, r2.BaseHow, dst+".bfm", "saved")
	}
	_, changed, zeroed, _, _, _ := expectedDiff(v1.bytes(), v2.bytes(), testBS)
	st := r2.Stats
	if got := st.Written + st.Deduplicated + st.CopiedLocal; got != changed {
		t.Errorf("incremental copy: written %d + deduplicated %d + copied locally %d = %d, want %d changed blocks",
			st.Written, st.Deduplicated, st.CopiedLocal, got, changed)
	}
	if st.BytesRead == 0 || st.Read > int64(len(v2.blocks)) {
		t.Errorf("incremental copy: read %d blocks (%d bytes), want the source read once", st.Read, st.BytesRead)
	}
	if st.Zeroed != zeroed {
		t.Errorf("incremental copy: zeroed %d, want %d", st.Zeroed, zeroed)
	}

	var r3 copyResult
	mustJSON(t, &r3, "copy", b, dst, "--verify=all")
	if r3.Stats.Written != 0 || r3.Stats.Zeroed != 0 || r3.Stats.BytesWritten != 0 {
		t.Errorf("repeat copy: wrote %d blocks (%d bytes), zeroed %d; want nothing", r3.Stats.Written, r3.Stats.BytesWritten, r3.Stats.Zeroed)
	}
	if r3.Stats.Verified != int64(len(v2.blocks)) {
		t.Errorf("--verify=all: verified %d blocks, want %d", r3.Stats.Verified, len(v2.blocks))
	}

	// verify: target against v2's manifest passes; against v1's fails
	// naming the mismatching blocks.
	mb, ma := filepath.Join(dir, "v2.bfm"), filepath.Join(dir, "v1.bfm")
	mustCLI(t, "hash", b, "-o", mb, "--block-size", "64KiB")
	mustCLI(t, "hash", a, "-o", ma, "--block-size", "64KiB")
	var vr verifyResult
	mustJSON(t, &vr, "verify", dst, mb)
	if !vr.OK || len(vr.Mismatches) != 0 {
		t.Errorf("verify against v2: got ok=%v mismatches %v, want ok", vr.OK, vr.Mismatches)
	}
	out, errOut, err := cli(t, "verify", dst, ma)
	oneErrorLine(t, errOut, err, "verify", "mismatch")
	if !strings.Contains(out, "block 0") {
		t.Errorf("verify against v1: stdout does not list block 0:\n%s", out)
	}
}

func TestCopyToLargerTarget(t *testing.T) {
	dir := t.TempDir()
	small := newImage(5, 8, 100)
	a := small.write(t, filepath.Join(dir, "small.img"))
	dst := newImage(6, 12, 0).write(t, filepath.Join(dir, "big.img"))

	_, errOut, err := cli(t, "copy", a, dst, "--block-size", "64KiB")
	oneErrorLine(t, errOut, err, "big.img")
	mustCLI(t, "copy", a, dst, "--block-size", "64KiB", "--truncate")
	if !bytes.Equal(readFile(t, dst), small.bytes()) {
		t.Fatalf("copy --truncate: target differs from source")
	}
}

func TestCopyHumanSummary(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	dst := filepath.Join(dir, "t.img")
	state := filepath.Join(dir, "state")
	mustCLI(t, "copy", a, dst, "--block-size", "64KiB", "--state-dir", state)
	out := mustCLI(t, "copy", b, dst, "--state-dir", state, "--verify", "--bwlimit", "1GB/s", "--max-inflight", "1MiB", "--concurrency", "3")
	for _, want := range []string{"read", "written", "unchanged", "zero", "deduplicated", "copied locally", "verified", "duration", "saved by the previous copy", state} {
		if !strings.Contains(out, want) {
			t.Errorf("copy summary does not mention %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dst + ".bfm"); err == nil {
		t.Errorf("--state-dir given, but a manifest was written beside the target")
	}
	if !bytes.Equal(readFile(t, dst), v2.bytes()) {
		t.Fatalf("target differs from v2")
	}
}

func TestCopyResumesFromJournal(t *testing.T) {
	dir := t.TempDir()
	v1 := newImage(11, 256, 0) // 16 MiB
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	dst := filepath.Join(dir, "target.img")
	journal := filepath.Join(dir, "copy.journal")

	// Interrupt a bandwidth-limited copy once the journal holds two records
	// past its two header lines: with a syncing target the first record of
	// a run names the boot, so two records mean at least one block is
	// journaled. (Records are 50 bytes; see replicate/journal.go.)
	const recSize = 50
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			b, err := os.ReadFile(journal)
			if err != nil {
				continue
			}
			nl := bytes.IndexByte(b, '\n')
			if nl < 0 {
				continue
			}
			if n := bytes.IndexByte(b[nl+1:], '\n'); n >= 0 && len(b)-(nl+1+n+1) >= 2*recSize {
				return
			}
		}
	}()
	_, errOut, err := cliCtx(t, ctx, "copy", a, dst, "--block-size", "64KiB", "--journal", journal, "--bwlimit", "4MiB/s", "--concurrency", "2")
	oneErrorLine(t, errOut, err, "interrupted", journal)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted copy: got %v, want context.Canceled", err)
	}

	var r copyResult
	mustJSON(t, &r, "copy", a, dst, "--block-size", "64KiB", "--journal", journal)
	if r.Stats.Resumed == 0 {
		t.Errorf("resumed copy: resumed_blocks 0, want the blocks the interrupted run finished")
	}
	if !bytes.Equal(readFile(t, dst), v1.bytes()) {
		t.Fatalf("after resume: target differs from source")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	img := newImage(3, 8, 0).write(t, filepath.Join(dir, "a.img"))
	m64, m512 := filepath.Join(dir, "a64.bfm"), filepath.Join(dir, "a512.bfm")
	mustCLI(t, "hash", img, "-o", m64, "--block-size", "64KiB")
	mustCLI(t, "hash", img, "-o", m512)
	good := readFile(t, m64)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	corruptPath := filepath.Join(dir, "corrupt.bfm")
	truncPath := filepath.Join(dir, "trunc.bfm")
	notManifest := filepath.Join(dir, "text.bfm")
	for p, b := range map[string][]byte{corruptPath: corrupt, truncPath: good[:len(good)-10], notManifest: []byte(strings.Repeat("hello, world\n", 10))} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "nope.img")

	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"missing file", []string{"hash", missing, "-o", filepath.Join(dir, "x.bfm")}, []string{"hash", missing, "does not exist"}},
		{"directory", []string{"hash", dir, "-o", filepath.Join(dir, "x.bfm")}, []string{dir, "is a directory"}},
		{"character device", []string{"hash", "/dev/null", "-o", filepath.Join(dir, "x.bfm")}, []string{"/dev/null", "not a volume"}},
		{"block sizes differ", []string{"diff", m512, m64}, []string{"diff: manifests have different block sizes", "a512.bfm: 524288", "a64.bfm: 65536", "same --block-size"}},
		{"block size flag vs manifest", []string{"diff", m64, img, "--block-size", "128KiB"}, []string{"block sizes differ"}},
		{"corrupt manifest", []string{"inspect", corruptPath}, []string{"corrupt.bfm", "corrupt"}},
		{"truncated manifest", []string{"inspect", truncPath}, []string{"trunc.bfm"}},
		{"diff corrupt manifest", []string{"diff", m64, corruptPath}, []string{"corrupt.bfm", "corrupt"}},
		{"diff truncated manifest", []string{"diff", truncPath, m64}, []string{"trunc.bfm", "truncated"}},
		{"verify against corrupt manifest", []string{"verify", img, corruptPath}, []string{"corrupt.bfm"}},
		{"dev: on a regular file", []string{"hash", "dev:" + img}, []string{img, "not a block device"}},
		{"dev: target on a regular file", []string{"copy", img, "dev:" + filepath.Join(dir, "b.img")}, []string{"b.img"}},
		{"not a manifest", []string{"diff", notManifest, m64}, []string{"text.bfm", "not a blockferry manifest"}},
		{"missing manifest", []string{"inspect", filepath.Join(dir, "none.bfm")}, []string{"none.bfm", "not found"}},
		{"block size not a power of two", []string{"hash", img, "--block-size", "3000"}, []string{"3000", "power of two"}},
		{"block size too big", []string{"hash", img, "--block-size", "32MiB"}, []string{"32MiB", "power of two"}},
		{"target is source", []string{"copy", img, img}, []string{"same file"}},
		{"target is source via file:", []string{"copy", img, "file:" + img}, []string{"same file"}},
		{"unknown command", []string{"frobnicate"}, []string{"unknown command", "frobnicate"}},
		{"unknown flag", []string{"hash", img, "--frob"}, []string{"hash", "frob"}},
		{"missing argument", []string{"diff", m64}, []string{"diff", "missing B"}},
		{"too many arguments", []string{"inspect", m64, m64}, []string{"too many"}},
		{"bad size", []string{"copy", img, filepath.Join(dir, "o.img"), "--max-inflight", "lots"}, []string{"lots"}},
		{"bad verify", []string{"copy", img, filepath.Join(dir, "o.img"), "--verify=some"}, []string{"verify"}},
		{"unknown scheme", []string{"hash", "gcs:bucket/x"}, []string{"unknown location scheme", "gcs:"}},
		{"verify mismatch geometry", []string{"verify", img, m64 + "x"}, []string{"verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := cli(t, tt.args...)
			oneErrorLine(t, errOut, err, tt.wants...)
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	out := mustCLI(t, "--version")
	if !strings.HasPrefix(out, "blockferry ") {
		t.Errorf("--version: got %q", out)
	}
	out = mustCLI(t, "help")
	for _, c := range commands() {
		if !strings.Contains(out, c.name) {
			t.Errorf("help does not list %q", c.name)
		}
	}
	for _, c := range commands() {
		out := mustCLI(t, c.name, "-h")
		if !strings.Contains(out, "Usage: blockferry "+c.name) {
			t.Errorf("%s -h: got %q", c.name, out)
		}
	}
	_, errOut, err := cli(t)
	if err == nil || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no arguments: got err %v, stderr %q; want usage and an error", err, errOut)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo in -short mode")
	}
	start := time.Now()
	out := mustCLI(t, "demo", "--size", "8MiB")
	for _, want := range []string{
		"1. Two versions", "$ blockferry diff v1.img v2.img", "$ blockferry copy v1.img target.img",
		"$ blockferry copy v2.img target.img --verify", "$ blockferry verify target.img v2.bfm",
		"saved by the previous copy", "identical to v2.img", "$ blockferry copy v2.img cas:store#v2 --cache-dir cache",
		"already in the store", "$ blockferry copy cas:store#v2 restored.img", "Removed",
		"$ blockferry copy v1.img ebs:new", "plan          change-list", "ebs-v2.img, read from region B, is identical to v2.img",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output does not contain %q:\n%s", want, out)
		}
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("demo took %s, want under 10s", el)
	}
	// The change-list copy between the fake regions moved the changed blocks only.
	vs, err := writeDemoVolumes(t.TempDir(), 8<<20, 512<<10)
	if err != nil {
		t.Fatal(err)
	}
	changed := int(vs.changedNew + vs.changedCopy + vs.changedZero)
	m := regexp.MustCompile(`(\d+) GetSnapshotBlock in A, (\d+)\s+PutSnapshotBlock in B`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("demo does not report the fakes' request counts:\n%s", out)
	} else if m[1] != strconv.Itoa(changed) || m[2] != strconv.Itoa(changed) {
		t.Errorf("change-list copy: got %s gets in A and %s puts in B, want %d each (the changed blocks)", m[1], m[2], changed)
	}
	// Its directory is gone.
	var dir string
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "Working in "); ok {
			dir = strings.TrimSuffix(s, ".")
		}
	}
	if dir == "" {
		t.Fatalf("demo did not say where it worked")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo directory %s still exists (err %v), want removed", dir, err)
	}
}

func TestDemoVolumesDiffer(t *testing.T) {
	dir := t.TempDir()
	vs, err := writeDemoVolumes(dir, 8<<20, 512<<10)
	if err != nil {
		t.Fatal(err)
	}
	a, b := readFile(t, filepath.Join(dir, "v1.img")), readFile(t, filepath.Join(dir, "v2.img"))
	_, changed, zeroed, _, _, _ := expectedDiff(a, b, 512<<10)
	if want := vs.changedNew + vs.changedCopy + vs.changedZero; changed+zeroed != want {
		t.Errorf("demo volumes: %d blocks differ, the narration says %d", changed+zeroed, want)
	}
}

// TestInterruptedIncrementalCopyLeavesNoStaleBase interrupts an
// incremental copy after it has started writing, then copies again: the
// manifest saved by the first copy no longer describes the target, so the
// next run must not trust it (without a journal) or must resume with it
// (with the interrupted run's journal); either way the target ends equal to
// the source.
func TestInterruptedIncrementalCopyLeavesNoStaleBase(t *testing.T) {
	for _, withJournal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", withJournal), func(t *testing.T) {
			dir := t.TempDir()
			v1, v2 := v1v2()
			a := v1.write(t, filepath.Join(dir, "v1.img"))
			b := v2.write(t, filepath.Join(dir, "v2.img"))
			dst := filepath.Join(dir, "target.img")
			mustCLI(t, "copy", a, dst, "--block-size", "64KiB")
			st0, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			go func() { // cancel once the target has been written to
				defer cancel()
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if st, err := os.Stat(dst); err == nil && !st.ModTime().Equal(st0.ModTime()) {
						return
					}
				}
			}()
			args := []string{"copy", b, dst, "--bwlimit", "128KiB/s", "--concurrency", "1"}
			if withJournal {
				args = append(args, "--journal", filepath.Join(dir, "j"))
			}
			_, errOut, err := cliCtx(t, ctx, args...)
			oneErrorLine(t, errOut, err, "canceled")
			if bytes.Equal(readFile(t, dst), v2.bytes()) {
				t.Fatalf("the interrupted copy finished anyway; the test proves nothing")
			}

			rerun := []string{"copy", b, dst}
			if withJournal {
				rerun = append(rerun, "--journal", filepath.Join(dir, "j"))
			}
			var r copyResult
			mustJSON(t, &r, rerun...)
			if !bytes.Equal(readFile(t, dst), v2.bytes()) {
				t.Fatalf("after the interrupted copy and a new one, the target differs from v2")
			}
			switch {
			case withJournal && r.BaseHow != "interrupted":
				t.Errorf("resumed copy: base_from %q, want %q (the interrupted run's base)", r.BaseHow, "interrupted")
			case !withJournal && (r.BaseHow != "" || !strings.Contains(strings.Join(r.Notes, " "), "interrupted")):
				t.Errorf("copy after an interrupted one: base_from %q, notes %q; want no base and a note", r.BaseHow, r.Notes)
			}
			if _, err := os.Stat(dst + ".bfm.pending"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pending manifest left after a successful copy (err %v)", err)
			}
			var again copyResult
			mustJSON(t, &again, "copy", b, dst)
			if again.BaseHow != "saved" || again.Stats.Written != 0 {
				t.Errorf("copy after the recovery: base_from %q, wrote %d; want the saved base and nothing written", again.BaseHow, again.Stats.Written)
			}
		})
	}
}
