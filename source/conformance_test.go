package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
)

// writeImage writes content to a new file, leaving the blocks in holes
// unwritten so they are real holes in the file.
func writeImage(t *testing.T, content []byte, holes []blockdiff.Extent, bs int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(len(content))); err != nil {
		t.Fatal(err)
	}
	g := blockdiff.Geometry{Size: int64(len(content)), BlockSize: bs}
	hole := make([]bool, g.Blocks())
	for _, h := range holes {
		for i := h.First; i < h.End(); i++ {
			hole[i] = true
		}
	}
	for i := range g.Blocks() {
		if hole[i] {
			continue
		}
		off := g.Offset(i)
		if _, err := f.WriteAt(content[off:off+int64(g.BlockLen(i))], off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		blockdifftest.TestSource(t, func(t *testing.T, c []byte, _ []blockdiff.Extent, bs int) blockdiff.Source {
			m, err := NewMemory(c, bs)
			if err != nil {
				t.Fatal(err)
			}
			return m
		})
	})
	t.Run("sparse memory", func(t *testing.T) {
		blockdifftest.TestSource(t, func(t *testing.T, c []byte, h []blockdiff.Extent, bs int) blockdiff.Source {
			m, err := NewSparseMemory(c, bs, h)
			if err != nil {
				t.Fatal(err)
			}
			return m
		})
	})
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"file", Options{}},
		{"file direct", Options{Direct: true}},
		{"device path", Options{forceDevice: true}},
		{"device path direct", Options{forceDevice: true, Direct: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blockdifftest.TestSource(t, func(t *testing.T, c []byte, h []blockdiff.Extent, bs int) blockdiff.Source {
				o := tc.opts
				o.BlockSize = bs
				f, err := openFile(writeImage(t, c, h, bs), o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := f.Close(); err != nil {
						t.Error(err)
					}
				})
				return f
			})
		})
	}
}
