package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/blockferry/blockferry/blockdiff"
)

type inspectFlags struct {
	outputFlags
	blocks bool
}

func inspectCommand() *command {
	return &command{
		name:    "inspect",
		args:    "MANIFEST",
		summary: "show a manifest's geometry, counts, origin and ID",
		help: `Prints what a manifest file describes: volume size, block size, block
counts by kind (data, zero, hole), distinct contents, the origin it was
taken from and the manifest's ID (the SHA-256 of its encoding). With
--blocks, also lists every block: index, kind and digest.`,
		flags: func(fs *flag.FlagSet) any {
			f := &inspectFlags{}
			f.register(fs)
			fs.BoolVar(&f.blocks, "blocks", false, "list every block: index, kind, digest")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runInspect(ctx, e, opts.(*inspectFlags), args)
		},
	}
}

// inspectResult is inspect's JSON output.
type inspectResult struct {
	Manifest string       `json:"manifest"`
	ID       string       `json:"id"`
	Origin   string       `json:"origin,omitempty"`
	Geometry geometryJSON `json:"geometry"`
	Counts   kindCounts   `json:"counts"`
	Distinct int64        `json:"distinct"`
	Blocks   []blockJSON  `json:"blocks,omitempty"`
}

type blockJSON struct {
	Index  int64  `json:"index"`
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
}

func runInspect(ctx context.Context, e env, f *inspectFlags, args []string) error {
	if err := wantArgs(args, "MANIFEST"); err != nil {
		return err
	}
	m, err := readManifest(args[0])
	if err != nil {
		return err
	}
	id, err := manifestID(m)
	if err != nil {
		return err
	}
	res := inspectResult{
		Manifest: args[0],
		ID:       id,
		Origin:   m.Origin,
		Geometry: geometryOf(m.Geometry()),
		Counts:   countsOf(m),
		Distinct: distinctData(m),
	}
	if f.json {
		if f.blocks {
			res.Blocks = make([]blockJSON, 0, m.Len())
			err := eachEntry(ctx, m, func(en blockdiff.Entry) error {
				res.Blocks = append(res.Blocks, blockJSON{Index: en.Index, Kind: en.Kind.String(), Digest: en.Digest.String()})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return printJSON(e.stdout, res)
	}
	w := bufio.NewWriter(e.stdout)
	origin := res.Origin
	if origin == "" {
		origin = "(not recorded)"
	}
	fmt.Fprintf(w, "manifest   %s\n", args[0])
	fmt.Fprintf(w, "id         %s\n", res.ID)
	fmt.Fprintf(w, "origin     %s\n", origin)
	fmt.Fprintf(w, "size       %d bytes (%s)\n", res.Geometry.Size, humanBytes(res.Geometry.Size))
	fmt.Fprintf(w, "block size %d bytes (%s)\n", res.Geometry.BlockSize, humanBytes(int64(res.Geometry.BlockSize)))
	fmt.Fprintf(w, "blocks     %d: %d data, %d zero, %d holes; %d distinct contents\n",
		res.Geometry.Blocks, res.Counts.Data, res.Counts.Zero, res.Counts.Holes, res.Distinct)
	if f.blocks {
		fmt.Fprintf(w, "\n%10s  %-4s  %s\n", "index", "kind", "digest")
		err := eachEntry(ctx, m, func(en blockdiff.Entry) error {
			_, err := fmt.Fprintf(w, "%10d  %-4s  %s\n", en.Index, en.Kind, en.Digest)
			return err
		})
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

// eachEntry calls fn for every entry of m in order, checking ctx every 4096
// blocks so a huge listing can be interrupted.
func eachEntry(ctx context.Context, m *blockdiff.Manifest, fn func(blockdiff.Entry) error) error {
	it := m.Iter()
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		en, err := it.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(en); err != nil {
			return err
		}
	}
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
