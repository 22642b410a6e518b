package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

type hashFlags struct {
	outputFlags
	out         string
	blockSize   blockSizeFlag
	concurrency int
}

func hashCommand() *command {
	return &command{
		name:    "hash",
		args:    "SRC",
		summary: "hash every block of a volume into a manifest file",
		help: `Reads SRC block by block (holes are not read), hashes each block with
SHA-256 and writes the manifest (geometry plus one digest per block) to
FILE, by default the source's base name with ".bfm" in the current
directory. The manifest is streamed to disk, so memory does not grow with
the volume. Prints a summary: blocks by kind (data, zero, hole), bytes
read, the manifest's ID.`,
		flags: func(fs *flag.FlagSet) any {
			f := &hashFlags{}
			f.register(fs)
			fs.StringVar(&f.out, "o", "", "write the manifest to `FILE` (default: SRC's base name + .bfm)")
			registerBlockSize(fs, &f.blockSize)
			fs.IntVar(&f.concurrency, "concurrency", 0, "blocks hashed at once (default: number of CPUs)")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runHash(ctx, e, opts.(*hashFlags), args)
		},
	}
}

// hashResult is hash's JSON output.
type hashResult struct {
	Source   string       `json:"source"`
	Manifest string       `json:"manifest"`
	ID       string       `json:"id"`
	Geometry geometryJSON `json:"geometry"`
	Counts   kindCounts   `json:"counts"`
	Bytes    int64        `json:"bytes_read"`
	Seconds  float64      `json:"seconds"`
}

func runHash(ctx context.Context, e env, f *hashFlags, args []string) (err error) {
	if err := wantArgs(args, "SRC"); err != nil {
		return err
	}
	loc, err := parseLocation(args[0])
	if err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = defaultManifestName(loc)
	}
	src, closeSrc, err := openSource(ctx, loc, sourceOptions{blockSize: f.blockSize.or(0)})
	if err != nil {
		return err
	}
	defer closeAll(&err, closeSrc)

	start := time.Now()
	bar := f.progress(e, "hash")
	sm, err := hashToFile(ctx, src, loc.raw, out, f.concurrency, bar)
	bar.Finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	res := hashResult{
		Source:   loc.raw,
		Manifest: out,
		ID:       sm.id.String(),
		Geometry: geometryOf(src.Geometry()),
		Counts:   sm.counts,
		Bytes:    sm.read,
		Seconds:  elapsed.Seconds(),
	}
	switch {
	case f.json:
		return printJSON(e.stdout, res)
	case f.quiet:
		return nil
	}
	fmt.Fprintf(e.stdout, "hashed %s: %s\n", loc.raw, src.Geometry())
	fmt.Fprintf(e.stdout, "  blocks   %d data, %d zero, %d holes\n", res.Counts.Data, res.Counts.Zero, res.Counts.Holes)
	fmt.Fprintf(e.stdout, "  read     %s in %s (%s)\n", humanBytes(sm.read), humanDuration(elapsed), humanRate(sm.read, elapsed))
	fmt.Fprintf(e.stdout, "  manifest %s (id %s)\n", out, res.ID)
	return nil
}

// defaultManifestName is SRC's base name with ".bfm", in the current
// directory.
func defaultManifestName(l location) string {
	base := filepath.Base(l.path)
	if base == "." || base == "/" || base == "" {
		base = safeName(l.raw)
	}
	return strings.TrimSuffix(base, ".bfm") + ".bfm"
}
