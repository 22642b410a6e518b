package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

type diffFlags struct {
	outputFlags
	blockSize   blockSizeFlag
	concurrency int
}

func diffCommand() *command {
	return &command{
		name:    "diff",
		args:    "A B",
		summary: "show what changed from volume A to volume B",
		help: `Compares two volumes block by block. A and B may each be a manifest file
(written by "hash" or "copy") or any source location, which is then
hashed. Prints how many blocks are unchanged, changed, newly zeroed and
holes, how many distinct new contents B has, and how many bytes a copy
from A to B must move.`,
		flags: func(fs *flag.FlagSet) any {
			f := &diffFlags{}
			f.register(fs)
			registerBlockSize(fs, &f.blockSize)
			fs.IntVar(&f.concurrency, "concurrency", 0, "blocks hashed at once when A or B is a volume (default: number of CPUs)")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runDiff(ctx, e, opts.(*diffFlags), args)
		},
	}
}

// diffResult is diff's JSON output.
type diffResult struct {
	A        string              `json:"a"`
	B        string              `json:"b"`
	Geometry geometryJSON        `json:"geometry"`
	Stats    blockdiff.DiffStats `json:"stats"`
	Seconds  float64             `json:"seconds"`
}

func runDiff(ctx context.Context, e env, f *diffFlags, args []string) (err error) {
	if err := wantArgs(args, "A", "B"); err != nil {
		return err
	}
	start := time.Now()
	// Manifests first: their block size decides how a volume on the other
	// side is hashed.
	sides := [2]*side{{arg: args[0]}, {arg: args[1]}}
	for _, s := range sides {
		if err := s.loadIfManifest(); err != nil {
			return err
		}
	}
	bs := int(f.blockSize)
	for _, s := range sides {
		if s.m == nil {
			continue
		}
		got := s.m.Geometry().BlockSize
		switch {
		case bs == 0:
			bs = got
		case got != bs:
			return blockSizeMismatch(sides, int(f.blockSize))
		}
	}
	for _, s := range sides {
		if s.m != nil {
			continue
		}
		if err := s.hash(ctx, e, &f.outputFlags, bs, f.concurrency); err != nil {
			return err
		}
	}
	ga, gb := sides[0].m.Geometry(), sides[1].m.Geometry()
	if ga.BlockSize != gb.BlockSize {
		return blockSizeMismatch(sides, int(f.blockSize))
	}
	cs, err := blockdiff.Diff(sides[0].m.Iter(), sides[1].m.Iter())
	if err != nil {
		return err
	}
	res := diffResult{A: args[0], B: args[1], Geometry: geometryOf(gb), Stats: cs.Stats, Seconds: time.Since(start).Seconds()}
	switch {
	case f.json:
		return printJSON(e.stdout, res)
	case f.quiet:
		return nil
	}
	st := cs.Stats
	fmt.Fprintf(e.stdout, "%s -> %s: %s\n", args[0], args[1], gb)
	if ga.Size != gb.Size {
		fmt.Fprintf(e.stdout, "  size      %d -> %d bytes\n", ga.Size, gb.Size)
	}
	fmt.Fprintf(e.stdout, "  unchanged %d blocks\n", st.Unchanged)
	fmt.Fprintf(e.stdout, "  changed   %d blocks (%d distinct new contents)\n", st.Changed, st.Distinct)
	fmt.Fprintf(e.stdout, "  zeroed    %d blocks (now zero or holes)\n", st.Zeroed)
	fmt.Fprintf(e.stdout, "  holes     %d blocks in B\n", st.Holes)
	fmt.Fprintf(e.stdout, "  to move   %s\n", humanBytes(st.Bytes))
	return nil
}

// side is one operand of diff: a manifest file, or a volume hashed on the
// fly.
type side struct {
	arg  string
	file bool // arg is a manifest file
	m    *blockdiff.Manifest
}

// loadIfManifest reads s.arg as a manifest when it is one.
func (s *side) loadIfManifest() error {
	if !isManifestFile(s.arg) {
		return nil
	}
	m, err := readManifest(s.arg)
	if err != nil {
		return err
	}
	s.m, s.file = m, true
	return nil
}

func (s *side) hash(ctx context.Context, e env, o *outputFlags, bs int, conc int) (err error) {
	loc, err := parseLocation(s.arg)
	if err != nil {
		return err
	}
	src, closeSrc, err := openSource(ctx, loc, sourceOptions{blockSize: bs})
	if err != nil {
		return err
	}
	defer closeAll(&err, closeSrc)
	if ms, ok := src.(blockdiff.Manifester); ok { // digests known without reading
		s.m, err = ms.Manifest(ctx)
		return err
	}
	bar := o.progress(e, "hash "+s.arg)
	s.m, _, err = hashSource(ctx, src, conc, bar)
	bar.Finish()
	return err
}

func blockSizeMismatch(sides [2]*side, flagBS int) error {
	what := func(s *side) string {
		if s.m == nil {
			return fmt.Sprintf("%s: hashed with --block-size %d", s.arg, flagBS)
		}
		return fmt.Sprintf("%s: %d", s.arg, s.m.Geometry().BlockSize)
	}
	if sides[0].file && sides[1].file {
		return fmt.Errorf("manifests have different block sizes (%s, %s): hash both with the same --block-size",
			what(sides[0]), what(sides[1]))
	}
	return fmt.Errorf("block sizes differ (%s, %s): hash both with the same --block-size, or leave --block-size out to use the manifest's",
		what(sides[0]), what(sides[1]))
}

// readManifest reads a manifest file with a message fit for the operator.
func readManifest(path string) (*blockdiff.Manifest, error) {
	m, err := blockdiff.ReadManifestFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return m, nil
}
