//go:build linux

package sink

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
)

// loopTarget returns a loop device over a new sparse file of size bytes
// (rounded up to 512) and the backing file's path.
func loopTarget(t *testing.T, size int64) (dev, backing string) {
	t.Helper()
	backing = filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, (size+511)&^511); err != nil {
		t.Fatal(err)
	}
	return blockdifftest.LoopDevice(t, backing, "the device code path over a regular file (TestConformance/device_path*)"), backing
}

// TestLoopDevice runs the sink suite on real block devices: ioctl sizing,
// BLKZEROOUT, BLKDISCARD and O_DIRECT against loop devices. The short last
// block case uses a device larger than the volume (rounded up to 512).
func TestLoopDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"zeroout", Options{}},
		{"direct", Options{Direct: true}},
		{"discard", Options{Discard: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blockdifftest.TestSink(t, func(t *testing.T, g blockdiff.Geometry) blockdiff.Sink {
				dev, _ := loopTarget(t, g.Size)
				s, err := OpenFile(dev, g, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !s.IsDevice() {
					t.Fatalf("%s: IsDevice() = false, want true", dev)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func TestLoopDeviceTooSmall(t *testing.T) {
	dev, _ := loopTarget(t, 64<<10)
	_, err := OpenFile(dev, blockdiff.Geometry{Size: 64<<10 + 4096, BlockSize: 4096}, Options{})
	if !errors.Is(err, blockdiff.ErrGeometry) || !strings.Contains(err.Error(), dev) {
		t.Fatalf("got %v, want ErrGeometry naming %s", err, dev)
	}
}

// TestLoopDeviceDiscardFreesSpace checks that zeroed blocks on a loop device
// read back as zeros with BLKZEROOUT and with BLKDISCARD, and that discard
// deallocates the backing file's blocks (the loop driver punches holes; for
// BLKZEROOUT it zeroes in place, keeping the space, which is only logged).
func TestLoopDeviceDiscardFreesSpace(t *testing.T) {
	ctx := context.Background()
	const bs = 64 << 10
	g := blockdiff.Geometry{Size: 16 * bs, BlockSize: bs}
	for _, discard := range []bool{false, true} {
		dev, backing := loopTarget(t, g.Size)
		s, err := OpenFile(dev, g, Options{Discard: discard, Direct: true})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{0x5A}, bs)
		for i := range g.Blocks() {
			if err := s.WriteBlock(ctx, i, data, blockdiff.Digest{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ZeroBlocks(ctx, blockdiff.Extent{First: 2, Count: 12}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, bs)
		for i := range g.Blocks() {
			if _, err := s.ReadBlock(ctx, i, buf); err != nil {
				t.Fatal(err)
			}
			wantZero := i >= 2 && i < 14
			if got := bytes.Count(buf, []byte{0}) == bs; got != wantZero {
				t.Fatalf("discard=%v: block %d zero %v, want %v", discard, i, got, wantZero)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(backing)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:2*bs], bytes.Repeat([]byte{0x5A}, 2*bs)) || bytes.Count(got[2*bs:14*bs], []byte{0}) != 12*bs {
			t.Fatalf("discard=%v: backing file content differs", discard)
		}
		a := allocated(t, backing)
		t.Logf("discard=%v: backing file allocates %d of %d bytes after zeroing 12 of 16 blocks", discard, a, g.Size)
		if discard && a > 4*bs {
			t.Fatalf("discard: backing file allocates %d bytes, want at most %d (12 of 16 blocks discarded)", a, 4*bs)
		}
	}
}

// TestReadOnlyTarget checks a read-only target is refused at open with an
// error that says so: a read-only loop device (EROFS, which binds root too)
// and, when not root, a file without write permission.
func TestReadOnlyTarget(t *testing.T) {
	g := blockdiff.Geometry{Size: 64 << 10, BlockSize: 4096}
	backing := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(backing, make([]byte, g.Size), 0o400); err != nil {
		t.Fatal(err)
	}
	targets := []string{}
	if os.Geteuid() != 0 {
		targets = append(targets, backing) // root ignores file permissions
	}
	targets = append(targets, blockdifftest.ReadOnlyLoopDevice(t, backing, "a read-only file as non-root (root ignores permissions)"))
	for _, p := range targets {
		s, err := OpenFile(p, g, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("%s: opened a read-only target for writing", p)
		}
		if !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: got %v, want an error naming the path and saying read-only", p, err)
		}
		t.Log(err)
	}
}
