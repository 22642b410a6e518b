package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testBS is the block size the tests use, small so images stay small.
const testBS = 64 << 10

// cli runs the CLI in-process and returns stdout, stderr and the error,
// with stderr already holding the one line main would print for it.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return cliCtx(t, context.Background(), args...)
}

func cliCtx(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(ctx, args, strings.NewReader(""), &out, &errb)
	if err != nil {
		exitCode(err, &errb)
	}
	return out.String(), errb.String(), err
}

// mustCLI runs the CLI and fails the test on error.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, args...)
	if err != nil {
		t.Fatalf("blockferry %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// mustJSON runs the CLI with --json appended and decodes stdout into v.
func mustJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustCLI(t, append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("blockferry %s --json: output is not the expected JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		t.Fatalf("blockferry %s --json: more than one JSON value on stdout:\n%s", strings.Join(args, " "), out)
	}
}

// image is a test volume: its blocks (nil for a hole, never written) and
// a short tail.
type image struct {
	blocks [][]byte
	size   int64
}

// newImage builds a deterministic volume of n blocks of testBS plus a
// short last block of tail bytes: random data, some duplicates of block 1,
// some blocks of written zeros and a run of holes.
func newImage(seed uint64, n int, tail int) *image {
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 42})
	im := &image{size: int64(n)*testBS + int64(tail)}
	total := n
	if tail > 0 {
		total++
	}
	for i := range total {
		size := testBS
		if i == n {
			size = tail
		}
		switch {
		case i >= n/2 && i < n/2+4 && i < n:
			im.blocks = append(im.blocks, nil) // hole
		case i%9 == 4:
			im.blocks = append(im.blocks, make([]byte, size)) // written zeros
		case i%7 == 3 && i > 1 && i < n:
			im.blocks = append(im.blocks, im.blocks[1]) // duplicate content
		default:
			b := make([]byte, size)
			rng.Read(b)
			im.blocks = append(im.blocks, b)
		}
	}
	return im
}

// clone returns a copy sharing block contents (which are never mutated).
func (im *image) clone() *image {
	c := *im
	c.blocks = append([][]byte(nil), im.blocks...)
	return &c
}

// bytes returns the whole volume.
func (im *image) bytes() []byte {
	out := make([]byte, im.size)
	for i, b := range im.blocks {
		copy(out[int64(i)*testBS:], b)
	}
	return out
}

// write writes the image as a sparse file.
func (im *image) write(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(im.size); err != nil {
		t.Fatal(err)
	}
	for i, b := range im.blocks {
		if b != nil {
			if _, err := f.WriteAt(b, int64(i)*testBS); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// blockSHA returns the crypto/sha256 of each block of data, in hex.
func blockSHA(data []byte, bs int) []string {
	var out []string
	for off := 0; off < len(data); off += bs {
		d := sha256.Sum256(data[off:min(off+bs, len(data))])
		out = append(out, hex.EncodeToString(d[:]))
	}
	return out
}

// readFile reads a file or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oneErrorLine checks that a failed command printed exactly one line on
// stderr, starting "blockferry: " and containing every want.
func oneErrorLine(t *testing.T, stderr string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want an error")
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "blockferry: ") {
		t.Fatalf("stderr: got %d lines %q, want one line starting %q", len(lines), stderr, "blockferry: ")
	}
	for _, w := range wants {
		if !strings.Contains(lines[0], w) {
			t.Errorf("stderr %q: want it to mention %q", lines[0], w)
		}
	}
	if code := exitCode(err, &bytes.Buffer{}); code == 0 {
		t.Errorf("exit code: got 0, want non-zero")
	}
}

func tempPath(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }
