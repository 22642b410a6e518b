//go:build linux

package sink

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

const benchSize = 32 << 20

// BenchmarkWriteBlock writes a 32 MiB target block by block (into the page
// cache, except with O_DIRECT), beside the stdlib baseline os.File.WriteAt.
func BenchmarkWriteBlock(b *testing.B) {
	ctx := context.Background()
	for _, bs := range []int{64 << 10, 512 << 10} {
		blocks := int64(benchSize / bs)
		data := make([]byte, bs)
		for i := range data {
			data[i] = byte(i*31 + 7)
		}
		d := sha256.Sum256(data)
		b.Run(fmt.Sprintf("bs=%dK/impl=os.File.WriteAt", bs>>10), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "t"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(bs))
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				if _, err := f.WriteAt(data, (i%blocks)*int64(bs)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		for _, o := range []struct {
			name string
			opts Options
		}{{"File", Options{}}, {"File-direct", Options{Direct: true}}} {
			b.Run(fmt.Sprintf("bs=%dK/impl=%s", bs>>10, o.name), func(b *testing.B) {
				g := blockdiff.Geometry{Size: benchSize, BlockSize: bs}
				s, err := OpenFile(filepath.Join(b.TempDir(), "t"), g, o.opts)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.SetBytes(int64(bs))
				b.ReportAllocs()
				i := int64(0)
				for b.Loop() {
					if err := s.WriteBlock(ctx, i%blocks, data, d); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func TestWriteBlockAllocs(t *testing.T) {
	g := blockdiff.Geometry{Size: 64 << 10, BlockSize: 4096}
	f, err := OpenFile(filepath.Join(t.TempDir(), "t"), g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := NewMemory(g)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4096)
	data[0] = 1
	ctx := context.Background()
	for _, s := range []blockdiff.Sink{f, m} {
		if got := testing.AllocsPerRun(100, func() {
			if err := s.WriteBlock(ctx, 3, data, blockdiff.Digest{}); err != nil {
				t.Fatal(err)
			}
		}); got != 0 {
			t.Errorf("%T.WriteBlock: got %v allocations per call, want 0", s, got)
		}
	}
}
