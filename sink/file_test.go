//go:build linux

package sink

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

const bs = 4096

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestOpenFileSizing(t *testing.T) {
	g := blockdiff.Geometry{Size: 10*bs + 7, BlockSize: bs}
	for _, tc := range []struct {
		name     string
		existing int64 // -1: no file
		opts     Options
		wantErr  error
	}{
		{"create", -1, Options{}, nil},
		{"grow", 3 * bs, Options{}, nil},
		{"same", g.Size, Options{}, nil},
		{"larger refused", g.Size + 1, Options{}, blockdiff.ErrGeometry},
		{"larger truncated", g.Size + 5*bs, Options{Truncate: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "target.img")
			if tc.existing >= 0 {
				if err := os.WriteFile(p, fill(int(tc.existing), 9), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := OpenFile(p, g, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("got %v, want %v naming %s", err, tc.wantErr, p)
				}
				fi, _ := os.Stat(p)
				if fi.Size() != tc.existing {
					t.Fatalf("refused target resized: got %d bytes, want %d", fi.Size(), tc.existing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != g.Size {
				t.Fatalf("size: got %d, want %d", fi.Size(), g.Size)
			}
			if tc.existing < 0 {
				if a := allocated(t, p); a != 0 {
					t.Fatalf("new target not sparse: %d bytes allocated", a)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("mode: got %v, want 0600", fi.Mode().Perm())
				}
			}
		})
	}
}

func TestFilePunchAndCopy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"file", Options{}},
		{"file direct", Options{Direct: true}},
		{"device path", Options{forceDevice: true}},
		{"device path direct", Options{forceDevice: true, Direct: true}},
		{"device path discard", Options{forceDevice: true, Discard: true}},
	} {
		o := tc.o
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.img")
			g := blockdiff.Geometry{Size: 8*bs + 100, BlockSize: bs}
			if o.forceDevice {
				// The device path never resizes: give it a target of the volume size.
				if err := os.WriteFile(p, make([]byte, g.Size), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := openFile(p, g, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := make([]byte, g.Size)
			for i := range g.Blocks() {
				b := fill(g.BlockLen(i), byte(i+1))
				if err := s.WriteBlock(ctx, i, b, blockdiff.Digest{}); err != nil {
					t.Fatal(err)
				}
				copy(want[g.Offset(i):], b)
			}
			if err := s.ZeroBlocks(ctx, blockdiff.Extent{First: 2, Count: 3}); err != nil {
				t.Fatal(err)
			}
			clear(want[2*bs : 5*bs])
			if err := s.ZeroBlocks(ctx, blockdiff.Extent{First: 8, Count: 1}); err != nil { // short last block
				t.Fatal(err)
			}
			clear(want[8*bs:])
			if err := s.CopyBlock(ctx, 6, 0); err != nil {
				t.Fatal(err)
			}
			copy(want[6*bs:7*bs], want[:bs])
			if err := s.Commit(ctx, nil); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("target content differs from what was written, zeroed and copied")
			}
			if !o.forceDevice {
				// 9 blocks written, 3 whole ones punched; the short last
				// block's 100 bytes are zeroed inside a page that stays.
				if a := allocated(t, p); a > 6*bs {
					t.Fatalf("allocated: got %d bytes, want <= %d (holes punched)", a, 6*bs)
				}
			}
		})
	}
}

func TestFileDeviceTooSmall(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(p, make([]byte, 2*bs), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openFile(p, blockdiff.Geometry{Size: 3 * bs, BlockSize: bs}, Options{forceDevice: true})
	if !errors.Is(err, blockdiff.ErrGeometry) || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("got %v, want ErrGeometry saying too small", err)
	}
}

// TestFileWriteError provokes a real OS write failure (EFBIG under
// RLIMIT_FSIZE) and checks it comes back wrapped with path and block.
func TestFileWriteError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.img")
	g := blockdiff.Geometry{Size: 64 * bs, BlockSize: bs}
	s, err := OpenFile(p, g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 8 * bs
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE (%v); write errors are covered by blockdifftest.FaultySink instead", err)
	}
	err = s.WriteBlock(context.Background(), 40, fill(bs, 1), blockdiff.Digest{})
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	var be *blockdiff.BlockError
	if !errors.Is(err, syscall.EFBIG) || !errors.As(err, &be) || be.Index != 40 || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want EFBIG in a BlockError for block 40 naming %s", err, p)
	}
}

func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p1, p2 string
		want   bool
	}{
		{a, a, true}, {a, link, true}, {a, b, false}, {a, filepath.Join(dir, "missing"), false},
		{"/dev/null", "/dev/null", true},
	} {
		got, err := SameFile(tc.p1, tc.p2)
		if err != nil || got != tc.want {
			t.Errorf("SameFile(%s, %s): got %v, %v, want %v, nil", tc.p1, tc.p2, got, err, tc.want)
		}
	}
}

func TestFileCommitManifest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := blockdiff.Geometry{Size: 3 * bs, BlockSize: bs}
	mp := filepath.Join(dir, "t.manifest")
	s, err := OpenFile(filepath.Join(dir, "t.img"), g, Options{ManifestPath: mp})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(1, blockdiff.Data, blockdiff.Digest{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlock(ctx, 1, fill(bs, 5), blockdiff.Digest{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, nil); err == nil {
		t.Fatal("commit with ManifestPath and nil manifest: got nil error")
	}
	if err := s.Commit(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := blockdiff.ReadManifestFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(m) {
		t.Fatal("manifest file differs from the committed manifest")
	}
	if err := s.WriteBlock(ctx, 0, fill(bs, 1), blockdiff.Digest{}); !errors.Is(err, blockdiff.ErrClosed) {
		t.Fatalf("write after commit: got %v, want ErrClosed", err)
	}
	if err := s.Commit(ctx, m); !errors.Is(err, blockdiff.ErrClosed) {
		t.Fatalf("second commit: got %v, want ErrClosed", err)
	}
}

// TestFileExtentsSkipsHoles checks that a file target reports its holes, so
// an engine hashing a live sparse target does not read them, and that the
// device code path reports one run over everything.
func TestFileExtentsSkipsHoles(t *testing.T) {
	const bs = 64 << 10
	g := blockdiff.Geometry{Size: 16*bs + 100, BlockSize: bs}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		device bool
		want   []blockdiff.Extent
	}{
		{"file", false, []blockdiff.Extent{{First: 3, Count: 1}, {First: 10, Count: 2}, {First: 16, Count: 1}}},
		{"device path", true, []blockdiff.Extent{{First: 0, Count: 17}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "target")
			if tc.device { // a "device" has its size already
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(p, g.Size); err != nil {
					t.Fatal(err)
				}
			}
			s, err := openFile(p, g, Options{forceDevice: tc.device})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, i := range []int64{3, 10, 11, 16} {
				data := bytes.Repeat([]byte{byte(i)}, g.BlockLen(i))
				if err := s.WriteBlock(ctx, i, data, blockdiff.Digest(hashing.Sum256(data))); err != nil {
					t.Fatal(err)
				}
			}
			var got []blockdiff.Extent
			if err := s.Extents(ctx, func(e blockdiff.Extent) error { got = append(got, e); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("extents: got %v, want %v", got, tc.want)
			}
			stop := errors.New("stop")
			if err := s.Extents(ctx, func(blockdiff.Extent) error { return stop }); err != stop {
				t.Fatalf("error from fn: got %v, want it returned as is", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Extents(ctx, func(blockdiff.Extent) error { return nil }); !errors.Is(err, blockdiff.ErrClosed) {
				t.Fatalf("extents after close: got %v, want ErrClosed", err)
			}
		})
	}
}
