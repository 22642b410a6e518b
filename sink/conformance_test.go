package sink

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
)

func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		blockdifftest.TestSink(t, func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
			m, err := NewMemory(g)
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
		{"device path discard", Options{forceDevice: true, Discard: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blockdifftest.TestSink(t, func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
				p := filepath.Join(t.TempDir(), "target")
				if tc.opts.forceDevice {
					// A device has its size already; emulate with a
					// file one block larger than the volume.
					if err := os.WriteFile(p, nil, 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.Truncate(p, g.Size+int64(g.BlockSize)); err != nil {
						t.Fatal(err)
					}
				}
				s, err := openFile(p, g, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
