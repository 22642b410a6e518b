package blockdiff

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes allocated while running fn.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// hugeClaim returns a well-formed manifest header claiming blocks blocks
// of 4 KiB, then body, the end marker and a valid trailer.
func hugeClaim(blocks uint64, body []byte) []byte {
	b := make([]byte, headerFixedLen)
	copy(b, magic[:])
	binary.LittleEndian.PutUint16(b[8:], FormatVersion)
	binary.LittleEndian.PutUint32(b[12:], 4096)
	binary.LittleEndian.PutUint64(b[16:], blocks*4096)
	binary.LittleEndian.PutUint64(b[24:], blocks)
	b = append(b, body...)
	b = append(b, 0, 0, 0, 0)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func TestHugeClaimDoesNotAllocate(t *testing.T) {
	ReadManifest(bytes.NewReader(encode(t, smallManifest(t)))) // warm the codec
	tests := []struct {
		name string
		in   []byte
	}{
		{"header only, 2^40 blocks", hugeClaim(1<<40, nil)[:headerFixedLen]},
		{"empty body, 2^40 blocks", hugeClaim(1<<40, nil)},
		{"chunk length claims 1 MiB", hugeClaim(1<<40, []byte{0, 0, 0x10, 0, 1, 2, 3})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			a := allocated(func() { _, err = ReadManifest(bytes.NewReader(tt.in)) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if a > 256<<10 {
				t.Fatalf("a %d-byte input allocated %d bytes, want < 256 KiB", len(tt.in), a)
			}
		})
	}
}

func FuzzReadManifest(f *testing.F) {
	f.Add(encode(f, smallManifest(f)))
	empty, _ := NewManifest(Geometry{BlockSize: 4096})
	f.Add(encode(f, empty))
	rng := rand.New(rand.NewPCG(5, 6))
	f.Add(encode(f, randomManifest(f, rng, Geometry{Size: 5000 * 4096, BlockSize: 4096}, 3, 1, 1, 10)))
	f.Add(hugeClaim(1<<40, nil))
	f.Add([]byte{})
	ReadManifest(bytes.NewReader(encode(f, smallManifest(f)))) // warm the shared codec

	f.Fuzz(func(t *testing.T, in []byte) {
		// Manifests claiming more blocks than this are walked with the
		// streaming Reader, whose memory does not depend on the volume;
		// smaller ones are loaded whole.
		const loadLimit = 1 << 22
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("NewReader: error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if r.Geometry().Blocks() > loadLimit {
			// Walk run by run: a valid hole run may cover 2^40 blocks.
			a := allocated(func() {
				for err == nil {
					_, _, _, err = r.nextRun()
				}
			})
			if err != io.EOF && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next: error %v is neither io.EOF nor ErrCorrupt", err)
			}
			if limit := uint64(4*len(in)) + 3<<20; a > limit {
				t.Fatalf("streaming a %d-byte input allocated %d bytes, want <= %d", len(in), a, limit)
			}
			return
		}
		var m *Manifest
		var decoded int64
		a := allocated(func() { m, decoded, err = readManifest(bytes.NewReader(in), "") })
		// 1 byte per decoded block (amortised doubling: 2) plus one digest
		// page per decoded block at worst, plus the input and 3 MiB of
		// chunk buffers.
		if limit := uint64(4*len(in)) + uint64(decoded)*(2+8) + uint64(min(decoded, (decoded+digestPage-1)/digestPage*digestPage))*DigestSize + 3<<20; a > limit {
			t.Fatalf("a %d-byte input decoding %d blocks allocated %d bytes, want <= %d", len(in), decoded, a, limit)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadManifest: error %v does not wrap ErrCorrupt", err)
			}
			// The streaming Reader fails too, unless all that is wrong is
			// data after the trailer, which it does not read.
			extra := strings.Contains(err.Error(), "extra bytes after its trailer")
			var rerr error
			for rerr == nil {
				_, rerr = r.Next()
			}
			if !errors.Is(rerr, ErrCorrupt) && !(extra && rerr == io.EOF) {
				t.Fatalf("Reader.Next on an input ReadManifest rejects (%v): got %v, want ErrCorrupt", err, rerr)
			}
			return
		}
		// A manifest that decodes re-encodes to the same bytes: the
		// encoding is canonical, or the trailer would not have matched.
		if enc := encode(t, m); !bytes.Equal(enc, in) {
			t.Logf("input decodes but re-encodes differently (%d vs %d bytes)", len(in), len(enc))
			m2, err := ReadManifest(bytes.NewReader(enc))
			if err != nil || !m2.Equal(m) {
				t.Fatalf("re-encoded manifest does not round-trip: %v", err)
			}
		}
	})
}
