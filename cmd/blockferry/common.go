package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/blockferry/blockferry/blockdiff"
)

// outputFlags are the flags every command that prints results shares.
type outputFlags struct {
	json  bool
	quiet bool
}

func (o *outputFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print one JSON object of results on stdout (no progress bar)")
	fs.BoolVar(&o.quiet, "quiet", false, "print no progress bar and no summary (errors still go to stderr)")
}

// progress returns a progress bar on stderr when it is a terminal and
// neither --json nor --quiet was given.
func (o *outputFlags) progress(e env, label string) *progressBar {
	return newProgress(e.stderr, label, o.quiet || o.json)
}

// printJSON writes v as one indented JSON object and a newline.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// blockSizeFlag is a --block-size value: a power of two from 4 KiB to
// 16 MiB, with size suffixes. Zero means "not given".
type blockSizeFlag int

func (b *blockSizeFlag) String() string { return strconv.Itoa(int(*b)) }

func (b *blockSizeFlag) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	if v > blockdiff.MaxBlockSize || blockdiff.ValidateBlockSize(int(v)) != nil {
		what := s
		if strconv.FormatInt(v, 10) != s {
			what = fmt.Sprintf("%s (%d bytes)", s, v)
		}
		return fmt.Errorf("block size %s is not a power of two from 4KiB to 16MiB; the default is 512KiB", what)
	}
	*b = blockSizeFlag(v)
	return nil
}

func registerBlockSize(fs *flag.FlagSet, b *blockSizeFlag) {
	fs.Var(b, "block-size", "block size, a power of two from 4KiB to 16MiB (default 512KiB)")
}

// or returns the block size, or def when none was given.
func (b blockSizeFlag) or(def int) int {
	if b == 0 {
		return def
	}
	return int(b)
}

// closeAll runs the close functions, ignoring nil ones, and joins their
// errors with err.
func closeAll(err *error, closers ...func() error) {
	for _, c := range closers {
		if c != nil {
			*err = errors.Join(*err, c())
		}
	}
}

// kindCounts is the JSON form of a manifest's block counts.
type kindCounts struct {
	Data  int64 `json:"data"`
	Zero  int64 `json:"zero"`
	Holes int64 `json:"holes"`
}

func countsOf(m *blockdiff.Manifest) kindCounts {
	d, z, h := m.Counts()
	return kindCounts{Data: d, Zero: z, Holes: h}
}

// geometryJSON is the JSON form of a geometry.
type geometryJSON struct {
	Size      int64 `json:"size"`
	BlockSize int   `json:"block_size"`
	Blocks    int64 `json:"blocks"`
}

func geometryOf(g blockdiff.Geometry) geometryJSON {
	return geometryJSON{Size: g.Size, BlockSize: g.BlockSize, Blocks: g.Blocks()}
}

// manifestID returns m's ID (the SHA-256 of its encoding) in hex.
func manifestID(m *blockdiff.Manifest) (string, error) {
	id, err := m.ID()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// readManifest reads a whole manifest file into memory.
func readManifest(path string) (*blockdiff.Manifest, error) {
	m, err := blockdiff.ReadManifestFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return m, nil
}
