package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type demoFlags struct {
	keep  bool
	size  byteSize
	dir   string
	noEBS bool
}

func demoCommand() *command {
	return &command{
		name:    "demo",
		args:    "",
		summary: "show a full copy, an incremental copy and a verification on sample volumes",
		help: `Builds two versions of a sample volume in a temporary directory (v1, and
v2 with about 5% of its blocks changed, some zeroed, some duplicated;
fixed seed, so every run is the same), then runs the real commands on them
and narrates: diff, a full copy, an incremental copy that picks up the
saved manifest, a verification, a backup of both versions to a local
content-addressed store with a restore from it, and EBS snapshots of both
versions in one fake region copied to another (the second by change list)
and read back. Needs no setup and takes a few
seconds. The directory is removed afterwards unless --keep is given.`,
		flags: func(fs *flag.FlagSet) any {
			f := &demoFlags{size: 64 << 20}
			fs.BoolVar(&f.keep, "keep", false, "keep the demo directory and print its path")
			fs.Var(&f.size, "size", "sample volume size, e.g. 16MiB (default 64MiB)")
			fs.BoolVar(&f.noEBS, "no-ebs", false, "leave out the EBS part (snapshots in two fake regions)")
			fs.StringVar(&f.dir, "dir", "", "build the demo in `DIR` (created; default: a new temporary directory)")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runDemo(ctx, e, opts.(*demoFlags), args)
		},
	}
}

func runDemo(ctx context.Context, e env, f *demoFlags, args []string) (err error) {
	if err := wantArgs(args); err != nil {
		return err
	}
	const bs = 512 << 10
	if f.size < 16*bs || f.size%bs != 0 {
		return usagef("--size %d: want a multiple of 512KiB, at least 8MiB", f.size)
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "blockferry-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !f.keep {
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	start := time.Now()
	d := &demo{ctx: ctx, e: e, dir: dir}
	say := d.say

	say("blockferry demo: every block is named by its SHA-256, so only changed blocks move.")
	say("Working in %s.", dir)
	say("")
	vs, err := writeDemoVolumes(dir, int64(f.size), bs)
	if err != nil {
		return err
	}
	say("1. Two versions of a %s volume (block size 512 KiB, %d blocks, fixed seed):", humanBytes(int64(f.size)), vs.blocks)
	say("   v1.img: %d data blocks, %d of them copies of another block, %d blocks of written zeros, %d holes (sparse).",
		vs.blocks-vs.holes-vs.zeros, vs.dups, vs.zeros, vs.holes)
	say("   v2.img: v1 with %d blocks changed: %d new contents, %d set to content found elsewhere in v1, %d zeroed.",
		vs.changedNew+vs.changedCopy+vs.changedZero, vs.changedNew, vs.changedCopy, vs.changedZero)
	say("")
	say("2. What changed from v1 to v2? (both are hashed; nothing is copied)")
	if err := d.cmd("diff", "v1.img", "v2.img"); err != nil {
		return err
	}
	say("3. First copy of v1 to target.img. Nothing is known about the target yet, so it is")
	say("   compared block by block (a new file is all holes, which are never read); zero")
	say("   blocks and holes are not written. The target's manifest is saved as target.img.bfm.")
	if err := d.cmd("copy", "v1.img", "target.img"); err != nil {
		return err
	}
	say("4. Incremental copy of v2 to the same target. The saved manifest is the base, so only v2")
	say("   is read and hashed; unchanged blocks are skipped, each new content is read once,")
	say("   and every written block is read back from the target (--verify).")
	if err := d.cmd("copy", "v2.img", "target.img", "--verify"); err != nil {
		return err
	}
	say("5. Verify: hash v2 into a manifest, then check the target against it, block by block.")
	if err := d.cmd("hash", "v2.img", "-o", "v2.bfm"); err != nil {
		return err
	}
	if err := d.cmd("verify", "target.img", "v2.bfm"); err != nil {
		return err
	}
	same, err := sameContent(filepath.Join(dir, "v2.img"), filepath.Join(dir, "target.img"))
	if err != nil {
		return err
	}
	if !same {
		return fmt.Errorf("demo: target.img differs from v2.img after the copy: this is a bug, please report it")
	}
	say("6. Byte-for-byte check: target.img is identical to v2.img.")
	say("")
	say("7. Back both versions up to a content-addressed store (a directory): each distinct block")
	say("   is stored once, compressed, so the second backup uploads only what is new.")
	if err := d.cmd("copy", "v1.img", "cas:store#v1", "--cache-dir", "cache"); err != nil {
		return err
	}
	if err := d.cmd("copy", "v2.img", "cas:store#v2", "--cache-dir", "cache"); err != nil {
		return err
	}
	if err := d.cmd("store", "ls", "cas:store"); err != nil {
		return err
	}
	say("8. Restore v2 from the store into a new file and check it against v2's manifest.")
	if err := d.cmd("copy", "cas:store#v2", "restored.img"); err != nil {
		return err
	}
	if err := d.cmd("verify", "restored.img", "v2.bfm"); err != nil {
		return err
	}
	if !f.noEBS {
		if err := withDemoCredentials(func() error { return d.ebsDemo(9, int64(f.size)) }); err != nil {
			return err
		}
	}
	if f.keep {
		say("Done in %s. Files kept in %s.", humanDuration(time.Since(start)), dir)
	} else {
		say("Done in %s. Removed %s.", humanDuration(time.Since(start)), dir)
	}
	return nil
}

// demo runs the real commands in a directory and prints them as a
// transcript with paths shown relative to it.
type demo struct {
	ctx   context.Context
	e     env
	dir   string
	subst map[string]string // placeholders shown in commands ($A) and what they stand for
}

func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.e.stdout, format+"\n", a...)
}

// cmd runs "blockferry ARGS" with file arguments inside the demo directory,
// printing the command and its indented output.
func (d *demo) cmd(args ...string) error {
	_, err := d.cmdOut(args...)
	return err
}

// cmdOut is cmd that also returns the command's output.
func (d *demo) cmdOut(args ...string) (string, error) {
	full := make([]string, len(args))
	for i, a := range args {
		full[i] = a
		if v, ok := d.subst[a]; ok {
			full[i] = v
			continue
		}
		switch {
		case strings.HasPrefix(a, "ebs:"):
		case strings.HasSuffix(a, ".img") || strings.HasSuffix(a, ".bfm"):
			full[i] = filepath.Join(d.dir, a)
		case a == "cache" || a == "ebs-state":
			full[i] = filepath.Join(d.dir, a)
		case strings.HasPrefix(a, "cas:"):
			full[i] = "cas:" + filepath.Join(d.dir, strings.TrimPrefix(a, "cas:"))
		}
	}
	fmt.Fprintf(d.e.stdout, "   $ blockferry %s\n", strings.Join(args, " "))
	var out bytes.Buffer
	err := run(d.ctx, full, d.e.stdin, &out, d.e.stderr)
	text := strings.ReplaceAll(out.String(), d.dir+string(filepath.Separator), "")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(d.e.stdout, "     %s\n", line)
	}
	fmt.Fprintln(d.e.stdout)
	return text, err
}

// demoVolumes describes the sample volumes writeDemoVolumes built.
type demoVolumes struct {
	blocks, holes, zeros, dups           int64
	changedNew, changedCopy, changedZero int64
}

// writeDemoVolumes writes v1.img and v2.img into dir: size bytes each in
// blocks of bs, from a fixed seed. v1 has a run of holes (never written),
// some blocks of written zeros and some blocks that repeat block 1; v2 is v1
// with about 5% of its blocks changed.
func writeDemoVolumes(dir string, size int64, bs int) (demoVolumes, error) {
	n := size / int64(bs)
	v := demoVolumes{blocks: n}
	src := rand.NewChaCha8([32]byte{'b', 'l', 'o', 'c', 'k', 'f', 'e', 'r', 'r', 'y'})
	rng := rand.New(src)
	blocks := make([][]byte, n) // nil: hole
	holeStart, holeEnd := n/2, n/2+n/16
	for i := range n {
		switch {
		case i >= holeStart && i < holeEnd:
			v.holes++
		case i%32 == 7:
			blocks[i] = make([]byte, bs)
			v.zeros++
		case i%16 == 5 && i > 1:
			blocks[i] = blocks[1]
			v.dups++
		default:
			b := make([]byte, bs)
			src.Read(b)
			blocks[i] = b
		}
	}
	if err := writeSparse(filepath.Join(dir, "v1.img"), size, blocks); err != nil {
		return v, err
	}
	// v2: about 5% of the data blocks change, cycling through three kinds
	// of change (2 new contents : 2 contents found elsewhere : 1 zeroed).
	isData := func(i int64) bool { return blocks[i] != nil && i%32 != 7 }
	var cands []int64
	for i := range n {
		if isData(i) {
			cands = append(cands, i)
		}
	}
	rng.Shuffle(len(cands), func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
	for _, i := range cands[:max(3, n/20)] {
		switch {
		case v.changedNew <= v.changedCopy && v.changedNew <= 2*v.changedZero:
			b := make([]byte, bs)
			src.Read(b)
			blocks[i] = b
			v.changedNew++
		case v.changedCopy <= 2*v.changedZero:
			j := (i + 3) % holeStart
			for !isData(j) || &blocks[j][0] == &blocks[i][0] {
				j = (j + 1) % holeStart
			}
			blocks[i] = blocks[j] // content the volume has elsewhere
			v.changedCopy++
		default:
			blocks[i] = make([]byte, bs)
			v.changedZero++
		}
	}
	return v, writeSparse(filepath.Join(dir, "v2.img"), size, blocks)
}

// writeSparse creates path of size bytes and writes the non-nil blocks;
// nil blocks stay holes.
func writeSparse(path string, size int64, blocks [][]byte) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer closeAll(&err, f.Close)
	if err := f.Truncate(size); err != nil {
		return err
	}
	var off int64
	for _, b := range blocks {
		if b != nil {
			if _, err := f.WriteAt(b, off); err != nil {
				return err
			}
		}
		off += int64(len(blocks[0]))
	}
	return nil
}

// sameContent reports whether two files hold the same bytes.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA := ea == io.EOF || ea == io.ErrUnexpectedEOF
		endB := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !endA:
			return false, ea
		case eb != nil && !endB:
			return false, eb
		case endA || endB:
			return endA == endB, nil
		}
	}
}
