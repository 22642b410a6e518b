package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
)

const benchSize = 32 << 20

func benchImage(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.img")
	g := blockdiff.Geometry{Size: benchSize, BlockSize: 1 << 20}
	if err := os.WriteFile(p, blockdifftest.Volume(1, g, 0, 0), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkReadBlock reads a 32 MiB image (in the page cache, except with
// O_DIRECT) block by block, beside the stdlib baseline os.File.ReadAt.
func BenchmarkReadBlock(b *testing.B) {
	p := benchImage(b)
	ctx := context.Background()
	for _, bs := range []int{64 << 10, 512 << 10} {
		blocks := int64(benchSize / bs)
		b.Run(fmt.Sprintf("bs=%dK/impl=os.File.ReadAt", bs>>10), func(b *testing.B) {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, bs)
			b.SetBytes(int64(bs))
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				if n, err := f.ReadAt(buf, (i%blocks)*int64(bs)); err != nil || n != bs {
					b.Fatal(n, err)
				}
				i++
			}
		})
		for _, o := range []struct {
			name string
			opts Options
		}{{"File", Options{}}, {"File-direct", Options{Direct: true}}} {
			b.Run(fmt.Sprintf("bs=%dK/impl=%s", bs>>10, o.name), func(b *testing.B) {
				opts := o.opts
				opts.BlockSize = bs
				f, err := OpenFile(p, opts)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := make([]byte, bs)
				b.SetBytes(int64(bs))
				b.ReportAllocs()
				i := int64(0)
				for b.Loop() {
					if n, err := f.ReadBlock(ctx, i%blocks, buf); err != nil || n != bs {
						b.Fatal(n, err)
					}
					i++
				}
			})
		}
	}
}

func TestReadBlockAllocs(t *testing.T) {
	p := writeImage(t, blockdifftest.Volume(1, blockdiff.Geometry{Size: 64 << 10, BlockSize: 4096}, 0, 0), nil, 4096)
	f, err := OpenFile(p, Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := NewMemory(make([]byte, 64<<10), 4096)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	ctx := context.Background()
	for _, s := range []blockdiff.Source{f, m} {
		if got := testing.AllocsPerRun(100, func() {
			if _, err := s.ReadBlock(ctx, 3, buf); err != nil {
				t.Fatal(err)
			}
		}); got != 0 {
			t.Errorf("%T.ReadBlock: got %v allocations per call, want 0", s, got)
		}
	}
}
