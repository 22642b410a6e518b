package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/replicate"
)

type verifyFlags struct {
	outputFlags
	concurrency int
	max         int
}

func verifyCommand() *command {
	return &command{
		name:    "verify",
		args:    "SRC MANIFEST",
		summary: "check a volume against a manifest, block by block",
		help: `Re-hashes every block of SRC (holes are not read) and compares it with
MANIFEST; zero and hole blocks count as the same content. Lists the
mismatched blocks (index, expected and found digest) and exits non-zero
when any block differs.`,
		flags: func(fs *flag.FlagSet) any {
			f := &verifyFlags{}
			f.register(fs)
			fs.IntVar(&f.concurrency, "concurrency", 0, "blocks read at once (default: number of CPUs)")
			fs.IntVar(&f.max, "max-mismatches", 0, "list at most `N` mismatched blocks (default 100; the count is always exact)")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runVerify(ctx, e, opts.(*verifyFlags), args)
		},
	}
}

// verifyResult is verify's JSON output.
type verifyResult struct {
	Source     string         `json:"source"`
	Manifest   string         `json:"manifest"`
	OK         bool           `json:"ok"`
	Checked    int64          `json:"checked_blocks"`
	Mismatched int64          `json:"mismatched_blocks"`
	Mismatches []mismatchJSON `json:"mismatches"`
	BytesRead  int64          `json:"bytes_read"`
	Seconds    float64        `json:"seconds"`
}

func runVerify(ctx context.Context, e env, f *verifyFlags, args []string) (err error) {
	if err := wantArgs(args, "SRC", "MANIFEST"); err != nil {
		return err
	}
	m, err := readManifest(args[1])
	if err != nil {
		return err
	}
	loc, err := parseLocation(args[0])
	if err != nil {
		return err
	}
	src, closeSrc, err := openSource(ctx, loc, sourceOptions{blockSize: m.Geometry().BlockSize})
	if err != nil {
		return err
	}
	defer closeAll(&err, closeSrc)
	if g := src.Geometry(); g != m.Geometry() {
		return fmt.Errorf("%s is %s but %s describes %s: not the same volume", args[0], g, args[1], m.Geometry())
	}
	bar := f.progress(e, "verify")
	vr, verr := replicate.Verify(ctx, src, m, replicate.VerifyOptions{
		Concurrency:   f.concurrency,
		MaxMismatches: f.max,
		Progress:      func(ev replicate.Event) { bar.Update(ev.DoneBytes, ev.PlannedBytes) },
	})
	bar.Finish()
	if vr == nil {
		return verr
	}
	if verr != nil && !errors.Is(verr, blockdiff.ErrChecksum) {
		return verr
	}
	res := verifyResult{
		Source: args[0], Manifest: args[1], OK: vr.Mismatched == 0,
		Checked: vr.Checked, Mismatched: vr.Mismatched, Mismatches: []mismatchJSON{},
		BytesRead: vr.BytesRead, Seconds: vr.Duration.Seconds(),
	}
	for _, mm := range vr.Mismatches {
		res.Mismatches = append(res.Mismatches, mismatchJSON{
			Index: mm.Index, WantKind: mm.Want.Kind.String(), Want: mm.Want.Digest.String(),
			GotKind: mm.Got.Kind.String(), Got: mm.Got.Digest.String(),
		})
	}
	switch {
	case f.json:
		if err := printJSON(e.stdout, res); err != nil {
			return err
		}
	case f.quiet:
	default:
		if res.OK {
			fmt.Fprintf(e.stdout, "ok: %s matches %s: %d blocks checked, %s read in %s\n",
				args[0], args[1], res.Checked, humanBytes(res.BytesRead), humanDuration(vr.Duration))
		} else {
			fmt.Fprintf(e.stdout, "MISMATCH: %d of %d blocks of %s differ from %s\n", res.Mismatched, res.Checked, args[0], args[1])
			for _, mm := range res.Mismatches {
				fmt.Fprintf(e.stdout, "  block %d: want %s %s, got %s %s\n", mm.Index, mm.WantKind, mm.Want, mm.GotKind, mm.Got)
			}
			if n := res.Mismatched - int64(len(res.Mismatches)); n > 0 {
				fmt.Fprintf(e.stdout, "  ... and %d more (raise --max-mismatches to list them)\n", n)
			}
		}
	}
	if !res.OK {
		return fmt.Errorf("%d of %d blocks of %s mismatch %s (first: block %d): the volume does not hold what the manifest says",
			res.Mismatched, res.Checked, args[0], args[1], firstIndex(res.Mismatches))
	}
	return nil
}

// mismatchJSON is one mismatched block in verify's output.
type mismatchJSON struct {
	Index    int64  `json:"index"`
	WantKind string `json:"want_kind"`
	Want     string `json:"want_digest"`
	GotKind  string `json:"got_kind"`
	Got      string `json:"got_digest"`
}

func firstIndex(ms []mismatchJSON) int64 {
	if len(ms) == 0 {
		return -1
	}
	return ms[0].Index
}
