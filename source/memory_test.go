package source

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

func TestMemoryReadBlock(t *testing.T) {
	const bs = 4096
	data := make([]byte, 2*bs+100)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	m, err := NewMemory(data, bs)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 0xFF // NewMemory copies: later changes must not show
	if got, want := m.Geometry(), (blockdiff.Geometry{Size: 2*bs + 100, BlockSize: bs}); got != want {
		t.Fatalf("geometry: got %v, want %v", got, want)
	}
	buf := make([]byte, bs)
	for _, tc := range []struct {
		name  string
		index int64
		want  int
	}{{"first", 0, bs}, {"middle", 1, bs}, {"short last", 2, 100}} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := m.ReadBlock(context.Background(), tc.index, buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Fatalf("n: got %d, want %d", n, tc.want)
			}
			off := tc.index * bs
			want := make([]byte, n)
			for i := range want {
				want[i] = byte((int(off)+i)*7 + 1)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("block %d: bytes differ", tc.index)
			}
		})
	}
	if _, err := m.ReadBlock(context.Background(), 3, buf); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Fatalf("read past end: got %v, want ErrOutOfRange", err)
	}
	if _, err := m.ReadBlock(context.Background(), 0, buf[:10]); err == nil {
		t.Fatal("short buffer: got nil error")
	}
}

func TestNewMemoryErrors(t *testing.T) {
	if _, err := NewMemory(nil, 1000); !errors.Is(err, blockdiff.ErrGeometry) {
		t.Fatalf("bad block size: got %v, want ErrGeometry", err)
	}
	m, err := NewMemory(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Geometry().BlockSize; got != blockdiff.DefaultBlockSize {
		t.Fatalf("default block size: got %d, want %d", got, blockdiff.DefaultBlockSize)
	}
}

func TestSparseMemory(t *testing.T) {
	const bs = 4096
	data := make([]byte, 6*bs)
	data[0] = 1
	data[3*bs] = 1
	s, err := NewSparseMemory(data, bs, []blockdiff.Extent{{First: 4, Count: 2}, {First: 1, Count: 1}, {First: 2, Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var got []blockdiff.Extent
	if err := s.Extents(context.Background(), func(e blockdiff.Extent) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []blockdiff.Extent{{First: 0, Count: 1}, {First: 3, Count: 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("extents: got %v, want %v", got, want)
	}
	if _, err := NewSparseMemory(data, bs, []blockdiff.Extent{{First: 3, Count: 1}}); !errors.Is(err, blockdiff.ErrGeometry) {
		t.Fatalf("hole over data: got %v, want ErrGeometry", err)
	}
	if _, err := NewSparseMemory(data, bs, []blockdiff.Extent{{First: 5, Count: 2}}); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Fatalf("hole past end: got %v, want ErrOutOfRange", err)
	}
}
