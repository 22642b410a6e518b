package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
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
	// Manifest files first: their block size decides how a volume on the
	// other side is hashed. They are streamed, never loaded whole.
	sides := [2]*side{{arg: args[0]}, {arg: args[1]}}
	defer func() {
		for _, s := range sides {
			closeAll(&err, s.close)
		}
	}()
	for _, s := range sides {
		if err := s.openIfManifest(); err != nil {
			return err
		}
	}
	bs := int(f.blockSize)
	for _, s := range sides {
		if s.it == nil {
			continue
		}
		switch got := s.it.Geometry().BlockSize; {
		case bs == 0:
			bs = got
		case got != bs:
			return blockSizeMismatch(sides, int(f.blockSize))
		}
	}
	for _, s := range sides {
		if s.it != nil {
			continue
		}
		if err := s.hash(ctx, e, &f.outputFlags, bs, f.concurrency); err != nil {
			return err
		}
	}
	ga, gb := sides[0].it.Geometry(), sides[1].it.Geometry()
	if ga.BlockSize != gb.BlockSize {
		return blockSizeMismatch(sides, int(f.blockSize))
	}
	cs, err := blockdiff.Diff(sides[0].it, sides[1].it)
	if err != nil {
		return fmt.Errorf("compare %s with %s: %w", args[0], args[1], err)
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
	fmt.Fprintf(e.stdout, "  zeroed    %d blocks (data in A, zero or hole in B)\n", st.Zeroed)
	fmt.Fprintf(e.stdout, "  in B      %d holes, %d zero blocks\n", st.Holes, st.Zeros)
	fmt.Fprintf(e.stdout, "  to move   %s (one block per distinct new content)\n", humanBytes(st.Bytes))
	return nil
}

// side is one operand of diff: a manifest file streamed from disk, or a
// volume hashed on the fly (or whose digests its store knows).
type side struct {
	arg   string
	file  bool // arg is a manifest file
	it    blockdiff.Iterator
	close func() error
}

// openIfManifest opens s.arg as a streamed manifest when it is one.
func (s *side) openIfManifest() error {
	if !isManifestFile(s.arg) {
		return nil
	}
	f, err := os.Open(s.arg)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	r, err := blockdiff.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return fmt.Errorf("read manifest %s: %w", s.arg, err)
	}
	s.it, s.file, s.close = r, true, f.Close
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
	var m *blockdiff.Manifest
	if ms, ok := src.(blockdiff.Manifester); ok { // digests known without reading
		m, err = ms.Manifest(ctx)
	} else {
		bar := o.progress(e, "hash "+s.arg)
		m, _, err = hashSource(ctx, src, conc, bar)
		bar.Finish()
	}
	if err != nil {
		return err
	}
	s.it = m.Iter()
	return nil
}

func blockSizeMismatch(sides [2]*side, flagBS int) error {
	what := func(s *side) string {
		if s.it == nil {
			return fmt.Sprintf("%s: hashed with --block-size %d", s.arg, flagBS)
		}
		return fmt.Sprintf("%s: %d", s.arg, s.it.Geometry().BlockSize)
	}
	if sides[0].file && sides[1].file {
		return fmt.Errorf("manifests have different block sizes (%s, %s): hash both with the same --block-size",
			what(sides[0]), what(sides[1]))
	}
	return fmt.Errorf("block sizes differ (%s, %s): hash both with the same --block-size, or leave --block-size out to use the manifest's",
		what(sides[0]), what(sides[1]))
}
