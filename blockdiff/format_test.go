package blockdiff

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockferry/blockferry/hashing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// randomManifest returns a manifest of g with kinds drawn from weights
// (data, zero, hole) in runs, and data digests drawn from a pool of size
// pool (0: all distinct).
func randomManifest(t testing.TB, rng *rand.Rand, g Geometry, data, zero, hole int, pool int) *Manifest {
	t.Helper()
	m, err := NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	n := g.Blocks()
	tot := data + zero + hole
	for i := int64(0); i < n; {
		r := rng.IntN(tot)
		k := Data
		if r >= data+zero {
			k = Hole
		} else if r >= data {
			k = Zero
		}
		run := int64(1 + rng.IntN(20))
		if rng.IntN(50) == 0 {
			run = int64(rng.IntN(9000))
		}
		for j := i; j < min(n, i+run); j++ {
			var d Digest
			if k == Data {
				if pool > 0 {
					d = poolDigest(rng.IntN(pool))
				} else {
					fillDigest(rng, &d)
				}
			}
			if err := m.Set(j, k, d); err != nil {
				t.Fatal(err)
			}
		}
		i += run
	}
	return m
}

func poolDigest(i int) Digest { return Digest(hashing.Sum256([]byte(fmt.Sprint("block", i)))) }

func fillDigest(rng *rand.Rand, d *Digest) {
	for i := 0; i < DigestSize; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			d[i+j] = byte(v >> (8 * j))
		}
	}
}

func encode(t testing.TB, m *Manifest) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := m.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, b.Len())
	}
	return b.Bytes()
}

// sameEntries compares two manifests entry by entry, kinds included.
func sameEntries(t *testing.T, got, want *Manifest) {
	t.Helper()
	if got.Geometry() != want.Geometry() {
		t.Fatalf("geometry: got %v, want %v", got.Geometry(), want.Geometry())
	}
	if got.Origin != want.Origin {
		t.Fatalf("origin: got %q, want %q", got.Origin, want.Origin)
	}
	if got.Len() != want.Len() {
		t.Fatalf("len: got %d, want %d", got.Len(), want.Len())
	}
	for i := range want.Len() {
		if g, w := got.Entry(i), want.Entry(i); g != w {
			t.Fatalf("entry %d: got %v %x, want %v %x", i, g.Kind, g.Digest[:4], w.Kind, w.Digest[:4])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	const bs = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name             string
		size             int64
		data, zero, hole int
		pool             int
		origin           string
	}{
		{"empty volume", 0, 1, 1, 1, 0, ""},
		{"one short block", 100, 1, 0, 0, 0, "file:/x"},
		{"short last block", 10*bs + 7, 1, 1, 1, 0, ""},
		{"all holes", 100000 * bs, 0, 0, 1, 0, ""},
		{"all zero", 100000 * bs, 0, 1, 0, 0, ""},
		{"all distinct data", 20000*bs + 1, 1, 0, 0, 0, "ebs:snap-0123456789abcdef0"},
		{"mixed with repeats", 50000 * bs, 5, 2, 3, 100, "cas:/tmp/x#name"},
		{"mixed distinct", 50000*bs - 3, 3, 1, 1, 0, strings.Repeat("é", MaxOriginLen/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := randomManifest(t, rng, Geometry{Size: tt.size, BlockSize: bs}, tt.data, tt.zero, tt.hole, tt.pool)
			m.Origin = tt.origin
			enc := encode(t, m)
			got, err := ReadManifest(bytes.NewReader(enc))
			if err != nil {
				t.Fatalf("ReadManifest: %v", err)
			}
			sameEntries(t, got, m)
			// Re-encoding the decoded manifest gives the same bytes.
			if enc2 := encode(t, got); !bytes.Equal(enc, enc2) {
				t.Fatalf("re-encoding differs: %d vs %d bytes", len(enc), len(enc2))
			}
			id, err := m.ID()
			if err != nil {
				t.Fatal(err)
			}
			if want := Digest(sha256.Sum256(enc)); id != want {
				t.Fatalf("ID: got %v, want sha256 of encoding %v", id, want)
			}
			// Streaming: the Reader yields the same entries, then io.EOF with the ID.
			r, err := NewReader(bytes.NewReader(enc))
			if err != nil {
				t.Fatal(err)
			}
			if r.Geometry() != m.Geometry() || r.Origin() != m.Origin {
				t.Fatalf("reader header: got %v %q, want %v %q", r.Geometry(), r.Origin(), m.Geometry(), m.Origin)
			}
			for i := range m.Len() {
				e, err := r.Next()
				if err != nil {
					t.Fatalf("Next at %d: %v", i, err)
				}
				if w := m.Entry(i); e != w {
					t.Fatalf("Next at %d: got %+v, want %+v", i, e, w)
				}
			}
			for range 2 {
				if _, err := r.Next(); err != io.EOF {
					t.Fatalf("Next after the end: got %v, want io.EOF", err)
				}
			}
			if r.ID() != id {
				t.Fatalf("Reader.ID: got %v, want %v", r.ID(), id)
			}
			// The Writer with Append gives the same bytes as WriteTo.
			var b bytes.Buffer
			w, err := NewWriter(&b, m.Geometry(), m.Origin)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m.Len() {
				if err := w.Append(m.Entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), enc) {
				t.Fatalf("Writer.Append encoding differs from WriteTo")
			}
			if w.ID() != id {
				t.Fatalf("Writer.ID: got %v, want %v", w.ID(), id)
			}
		})
	}
}

// smallManifest is a fixed manifest with every kind and a short last block.
func smallManifest(t testing.TB) *Manifest {
	t.Helper()
	m, err := NewManifest(Geometry{Size: 13*4096 + 100, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	m.Origin = "file:/var/lib/images/small.img"
	kinds := []Kind{Data, Data, Zero, Hole, Hole, Data, Data, Data, Zero, Zero, Data, Hole, Data, Data}
	for i, k := range kinds {
		if err := m.Set(int64(i), k, poolDigest(i%5)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestGolden(t *testing.T) {
	m := smallManifest(t)
	enc := encode(t, m)
	path := filepath.Join("testdata", "small.bfm")
	if *update {
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding of smallManifest changed:\n got %x\nwant %x\nif the format changed on purpose, bump FormatVersion and run with -update", enc, want)
	}
	got, err := ReadManifestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, m)
}

func TestTruncationDetected(t *testing.T) {
	enc := encode(t, smallManifest(t))
	for n := range len(enc) {
		_, err := ReadManifest(bytes.NewReader(enc[:n]))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: got %v, want ErrCorrupt", n, len(enc), err)
		}
		// The streaming reader must not report io.EOF either.
		r, err := NewReader(bytes.NewReader(enc[:n]))
		if err == nil {
			for err == nil {
				_, err = r.Next()
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("stream truncated to %d of %d bytes: got %v, want ErrCorrupt", n, len(enc), err)
		}
	}
	_, err := ReadManifest(bytes.NewReader(enc[:len(enc)-1]))
	if !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "blockferry hash") {
		t.Errorf("truncation message %q should say truncated and how to fix it", err)
	}
	_, err = ReadManifest(bytes.NewReader(append(enc[:len(enc):len(enc)], 0)))
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("extra byte after trailer: got %v, want ErrCorrupt", err)
	}
}

func TestBitFlipsDetected(t *testing.T) {
	enc := encode(t, smallManifest(t))
	for i := range len(enc) * 8 {
		c := bytes.Clone(enc)
		c[i/8] ^= 1 << (i % 8)
		if _, err := ReadManifest(bytes.NewReader(c)); err == nil {
			t.Fatalf("flipping bit %d of byte %d was not detected", i%8, i/8)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	enc := encode(t, smallManifest(t))
	tests := []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		{"wrong magic", func(b []byte) { copy(b, "GIF89a!!") }, "not a blockferry manifest"},
		{"newer version", func(b []byte) { b[8] = 2 }, "format version 2, this build reads version 1"},
		{"bad block size", func(b []byte) { b[12] = 1 }, "block size"},
		{"wrong block count", func(b []byte) { b[24]++ }, "block count"},
		{"flags", func(b []byte) { b[10] = 1 }, "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bytes.Clone(enc)
			tt.mutate(c)
			_, err := NewReader(bytes.NewReader(c))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrCorrupt mentioning %q", err, tt.want)
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	g := Geometry{Size: 3 * 4096, BlockSize: 4096}
	t.Run("out of order", func(t *testing.T) {
		w, err := NewWriter(io.Discard, g, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(Entry{Index: 1}); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Append(1) first: got %v, want ErrOutOfRange", err)
		}
		// The first error sticks.
		if err := w.Append(Entry{Index: 0}); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Append after error: got %v, want the first error", err)
		}
		if err := w.Close(); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Close after error: got %v, want the first error", err)
		}
	})
	t.Run("past the end", func(t *testing.T) {
		w, _ := NewWriter(io.Discard, g, "")
		for i := range int64(3) {
			if err := w.Append(Entry{Index: i, Kind: Hole}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Append(Entry{Index: 3, Kind: Hole}); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Append(3) of 3: got %v, want ErrOutOfRange", err)
		}
	})
	t.Run("close early", func(t *testing.T) {
		w, _ := NewWriter(io.Discard, g, "")
		w.Append(Entry{Index: 0, Kind: Zero})
		if err := w.Close(); !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "after 1 of 3 blocks") {
			t.Fatalf("Close after 1 of 3: got %v", err)
		}
	})
	t.Run("append after close", func(t *testing.T) {
		w, _ := NewWriter(io.Discard, Geometry{BlockSize: 4096}, "")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: got %v, want nil", err)
		}
		if err := w.Append(Entry{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: got %v, want ErrClosed", err)
		}
	})
	t.Run("bad origin", func(t *testing.T) {
		if _, err := NewWriter(io.Discard, g, "\xff"); err == nil {
			t.Fatal("invalid UTF-8 origin accepted")
		}
		if _, err := NewWriter(io.Discard, g, strings.Repeat("a", MaxOriginLen+1)); err == nil {
			t.Fatal("too long origin accepted")
		}
	})
	t.Run("bad geometry", func(t *testing.T) {
		if _, err := NewWriter(io.Discard, Geometry{BlockSize: 1000}, ""); !errors.Is(err, ErrGeometry) {
			t.Fatalf("block size 1000: got %v, want ErrGeometry", err)
		}
		if _, err := NewWriter(io.Discard, Geometry{Size: 1<<62 + 1, BlockSize: 4096}, ""); !errors.Is(err, ErrGeometry) {
			t.Fatalf("size 2^62+1: got %v, want ErrGeometry", err)
		}
	})
	t.Run("write error sticks", func(t *testing.T) {
		fw := &failWriter{left: 40}
		w, err := NewWriter(fw, Geometry{Size: 100 * 4096, BlockSize: 4096}, "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range int64(100) {
			w.Append(Entry{Index: i, Kind: Data, Digest: poolDigest(int(i))})
		}
		if err := w.Close(); !errors.Is(err, errDiskFull) {
			t.Fatalf("Close: got %v, want the write error", err)
		}
	})
}

var errDiskFull = errors.New("disk full")

type failWriter struct{ left int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, errDiskFull
	}
	f.left -= len(p)
	return len(p), nil
}

func TestManifestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vol.bfm")
	m := smallManifest(t)
	if err := WriteManifestFile(path, m); err != nil {
		t.Fatal(err)
	}
	m2 := randomManifest(t, rand.New(rand.NewPCG(3, 4)), Geometry{Size: 1 << 30, BlockSize: 64 << 10}, 1, 1, 1, 0)
	if err := WriteManifestFile(path, m2); err != nil { // replaces
		t.Fatal(err)
	}
	got, err := ReadManifestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, m2)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want 1 (no temp files left)", len(ents))
	}
	if _, err := ReadManifestFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: got %v, want ErrNotFound", err)
	}
	if err := WriteManifestFile(filepath.Join(dir, "no", "such", "dir"), m); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	// A corrupt file names its path.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-3], 0o644)
	if _, err := ReadManifestFile(path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("truncated file: got %v, want ErrCorrupt naming %s", err, path)
	}
}

func TestReaderDoesNotReadPastTrailer(t *testing.T) {
	enc := encode(t, smallManifest(t))
	stream := append(bytes.Clone(enc), "NEXT"...)
	br := bytes.NewReader(stream)
	r, err := NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	if err != io.EOF {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "NEXT" {
		t.Fatalf("after the manifest the stream holds %q, want %q", rest, "NEXT")
	}
}
