package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
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
directory. Prints a summary: blocks, data, zero and hole blocks, distinct
contents, the manifest's ID.`,
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
	Distinct int64        `json:"distinct"`
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
	m, read, err := hashSource(ctx, src, f.concurrency, bar)
	bar.Finish()
	if err != nil {
		return err
	}
	m.Origin = loc.raw
	if err := blockdiff.WriteManifestFile(out, m); err != nil {
		return err
	}
	elapsed := time.Since(start)
	id, err := manifestID(m)
	if err != nil {
		return err
	}
	res := hashResult{
		Source:   loc.raw,
		Manifest: out,
		ID:       id,
		Geometry: geometryOf(m.Geometry()),
		Counts:   countsOf(m),
		Distinct: distinctData(m),
		Bytes:    read,
		Seconds:  elapsed.Seconds(),
	}
	switch {
	case f.json:
		return printJSON(e.stdout, res)
	case f.quiet:
		return nil
	}
	fmt.Fprintf(e.stdout, "hashed %s: %s\n", loc.raw, m.Geometry())
	fmt.Fprintf(e.stdout, "  blocks   %d data, %d zero, %d holes; %d distinct contents\n",
		res.Counts.Data, res.Counts.Zero, res.Counts.Holes, res.Distinct)
	fmt.Fprintf(e.stdout, "  read     %s in %s (%s)\n", humanBytes(read), humanDuration(elapsed), humanRate(read, elapsed))
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

// distinctData counts the distinct digests of m's data blocks.
func distinctData(m *blockdiff.Manifest) int64 {
	seen := make(map[blockdiff.Digest]struct{})
	it := m.Iter()
	for {
		en, err := it.Next()
		if err != nil {
			break
		}
		if en.Kind == blockdiff.Data {
			seen[en.Digest] = struct{}{}
		}
	}
	return int64(len(seen))
}
