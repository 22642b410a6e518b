// Command genpair writes a seeded pair of volume images, v1.img and v2.img,
// for the replication benchmarks (see bench/README.md).
//
//	go run ./bench/cmd/genpair -size 4GiB -zero 0.30 -dup 0.10 -change 0.05 -seed 1 -block 512KiB -out DIR
//	go run ./bench/cmd/genpair -sparse-size 1TiB -data 2GiB -change 0.05 -seed 1 -out DIR
//
// It also writes workload.json, the workload and its block counts, which
// copybench reads. The same flags always produce byte-identical files. Zero blocks and the
// unallocated part of a sparse volume are left as holes. Memory use is two
// blocks whatever the size.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/blockferry/blockferry/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "genpair:", err)
		}
		os.Exit(2)
	}
}

// report is what -json prints.
type report struct {
	Workload bench.Workload `json:"workload"`
	Counts   bench.Counts   `json:"counts"`
	V1       string         `json:"v1"`
	V2       string         `json:"v2"`
	Seconds  float64        `json:"seconds"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genpair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		size    = fs.String("size", "1GiB", "volume size (dense mode)")
		sparse  = fs.String("sparse-size", "", "sparse mode: volume size such as 1TiB (replaces -size); data goes in 64 evenly spaced extents")
		data    = fs.String("data", "2GiB", "sparse mode: bytes of data")
		block   = fs.String("block", "512KiB", "block size, a power of two from 4KiB to 16MiB")
		zero    = fs.Float64("zero", 0.30, "fraction of data-extent blocks that are zero (left as holes) in v1")
		dup     = fs.Float64("dup", 0.10, "fraction of data-extent blocks repeating one of 16 shared contents")
		change  = fs.Float64("change", 0.05, "fraction of data-extent blocks that differ in v2 (fresh unique bytes)")
		seed    = fs.Uint64("seed", 1, "seed; equal flags give byte-identical files")
		out     = fs.String("out", "", "output directory, created if missing; v1.img and v2.img are replaced")
		jsonOut = fs.Bool("json", false, "print the workload and its block counts as JSON")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("want -out DIR and no positional arguments")
	}
	w := bench.Workload{Zero: *zero, Dup: *dup, Change: *change, Seed: *seed}
	bs, err := bench.ParseSize(*block)
	if err != nil {
		return err
	}
	w.BlockSize = int(bs)
	if *sparse != "" {
		if w.Size, err = bench.ParseSize(*sparse); err != nil {
			return err
		}
		if w.DataSize, err = bench.ParseSize(*data); err != nil {
			return err
		}
	} else if w.Size, err = bench.ParseSize(*size); err != nil {
		return err
	}
	if err := w.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	start := time.Now()
	if err := w.WritePair(ctx, *out); err != nil {
		return err
	}
	if err := w.WriteInfo(*out); err != nil {
		return err
	}
	c := w.Counts()
	secs := time.Since(start).Seconds()
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report{Workload: w, Counts: c, V1: bench.V1Name, V2: bench.V2Name, Seconds: secs})
	}
	fmt.Fprintf(stdout, "wrote %s/{%s,%s}: %s each, %d blocks of %s in %.1fs\n",
		*out, bench.V1Name, bench.V2Name, bench.FormatSize(w.Size), c.Blocks, bench.FormatSize(int64(w.BlockSize)), secs)
	fmt.Fprintf(stdout, "v1: %d unique, %d dup (16 contents), %d zero, %d outside the data extents; v2: %d blocks changed\n",
		c.Unique, c.Dup, c.Zero, c.Outside, c.Changed)
	return nil
}
