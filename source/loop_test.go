//go:build linux

package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
)

// TestLoopDevice runs the source suite on real block devices: loop devices
// over sparse images. Volumes whose size is not a multiple of 512 bytes
// cannot be loop devices and are skipped.
func TestLoopDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"buffered", Options{}},
		{"direct", Options{Direct: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blockdifftest.TestSource(t, func(t *testing.T, c []byte, h []blockdiff.Extent, bs int) blockdiff.Source {
				if len(c)%512 != 0 || len(c) == 0 {
					t.Skipf("a loop device cannot be %d bytes (not a positive multiple of 512); the device path over a regular file covers it in TestConformance", len(c))
				}
				dev := blockdifftest.LoopDevice(t, writeImage(t, c, h, bs), "the device code path over a regular file (TestConformance/device_path)")
				o := tc.opts
				o.BlockSize = bs
				f, err := OpenFile(dev, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				if !f.IsDevice() {
					t.Fatalf("%s: IsDevice() = false, want true", dev)
				}
				return f
			})
		})
	}
}

func TestLoopDeviceChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := blockdifftest.LoopDevice(t, p, "TestFileChanged on a regular file")
	f, err := OpenFile(dev, Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Geometry().Size; got != 64<<10 {
		t.Fatalf("device size: got %d, want %d", got, 64<<10)
	}
	if err := f.Changed(); err != nil {
		t.Fatalf("unchanged device: got %v, want nil", err)
	}
	n := 0
	if err := f.Extents(context.Background(), func(e blockdiff.Extent) error {
		n++
		if e != (blockdiff.Extent{First: 0, Count: 16}) {
			t.Errorf("device extent: got %+v, want the whole volume", e)
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("device extents: %d runs, err %v; want 1 run", n, err)
	}
	if _, err := f.ReadBlock(context.Background(), 16, make([]byte, 4096)); !errors.Is(err, blockdiff.ErrOutOfRange) {
		t.Fatalf("read past device end: got %v, want ErrOutOfRange", err)
	}
}
