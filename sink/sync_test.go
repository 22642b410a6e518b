//go:build linux

package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
)

// TestFileUnwrittenZero: only a file this OpenFile created reports that
// its unwritten blocks read as zeros.
func TestFileUnwrittenZero(t *testing.T) {
	g := blockdiff.Geometry{Size: 8*bs + 100, BlockSize: bs}
	for _, tc := range []struct {
		name     string
		existing int64 // -1: no file
		opts     Options
		want     bool
	}{
		{"created", -1, Options{}, true},
		{"created direct", -1, Options{Direct: true}, true},
		{"existing same size", g.Size, Options{}, false},
		{"existing smaller, grown", 2 * bs, Options{}, false},
		{"existing empty", 0, Options{}, false},
		{"device path", g.Size, Options{forceDevice: true}, false},
		{"device path with discard", g.Size, Options{forceDevice: true, Discard: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.img")
			if tc.existing >= 0 {
				if err := os.WriteFile(p, fill(int(tc.existing), 7), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := openFile(p, g, tc.opts)
			if tc.opts.Direct && err != nil {
				t.Skipf("filesystem refuses O_DIRECT: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.UnwrittenZero(); got != tc.want {
				t.Errorf("UnwrittenZero: got %v, want %v", got, tc.want)
			}
			if !tc.want {
				return
			}
			// The claim holds: every block reads as zeros.
			buf := make([]byte, bs)
			for i := range g.Blocks() {
				n, err := s.ReadBlock(context.Background(), i, buf)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range buf[:n] {
					if b != 0 {
						t.Fatalf("block %d of a created file is not zero", i)
					}
				}
			}
		})
	}
	t.Run("reopened", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "t.img")
		s, err := OpenFile(p, g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := OpenFile(p, g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if s2.UnwrittenZero() {
			t.Errorf("UnwrittenZero of a file an earlier open created: got true, want false")
		}
	})
	t.Run("loop device", func(t *testing.T) {
		dev, _ := loopTarget(t, g.Size)
		s, err := OpenFile(dev, g, Options{Discard: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.UnwrittenZero() {
			t.Errorf("UnwrittenZero of a block device: got true, want false")
		}
	})
}

// TestFileSync: Sync makes writes durable without sealing the target,
// is a no-op after Commit, refuses after Close, and a failed fsync is
// final.
func TestFileSync(t *testing.T) {
	ctx := context.Background()
	g := blockdiff.Geometry{Size: 8 * bs, BlockSize: bs}
	open := func(t *testing.T) *File {
		s, err := OpenFile(filepath.Join(t.TempDir(), "t.img"), g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("writes go on", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		for i := range g.Blocks() {
			if err := s.WriteBlock(ctx, i, fill(bs, byte(i+1)), blockdiff.Digest{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(ctx); err != nil {
				t.Fatalf("Sync after block %d: %v", i, err)
			}
		}
		buf := make([]byte, bs)
		if _, err := s.ReadBlock(ctx, 5, buf); err != nil || buf[0] != 6 {
			t.Fatalf("block 5 after Sync: got %d, %v; want 6", buf[0], err)
		}
		if err := s.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx); err != nil {
			t.Errorf("Sync after Commit: got %v, want nil", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Sync(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Sync with a done ctx: got %v, want context.Canceled", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s := open(t)
		s.Close()
		if err := s.Sync(ctx); !errors.Is(err, blockdiff.ErrClosed) {
			t.Errorf("Sync after Close: got %v, want ErrClosed", err)
		}
	})
	t.Run("failed fsync is final", func(t *testing.T) {
		s := open(t)
		// A descriptor closed under the sink makes fsync fail for real.
		s.f.Close()
		err := s.Sync(ctx)
		if err == nil {
			t.Fatal("Sync on a closed descriptor: got nil, want an error")
		}
		if err2 := s.WriteBlock(ctx, 0, fill(bs, 1), blockdiff.Digest{}); !errors.Is(err2, err) {
			t.Errorf("WriteBlock after a failed Sync: got %v, want the Sync error %v", err2, err)
		}
		if err3 := s.Sync(ctx); err3 != err {
			t.Errorf("second Sync: got %v, want the first error %v", err3, err)
		}
		if err4 := s.Commit(ctx, nil); !errors.Is(err4, err) {
			t.Errorf("Commit after a failed Sync: got %v, want the Sync error", err4)
		}
		s.Close()
	})
}
