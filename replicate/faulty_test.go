package replicate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// fileVolumes writes newData as the source and oldData as the target and
// opens both.
func fileVolumes(t *testing.T) (srcPath, dstPath string, src *source.File, dst *sink.File) {
	t.Helper()
	dir := t.TempDir()
	srcPath, dstPath = filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	if err := os.WriteFile(srcPath, newData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dstPath, oldData, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenFile(srcPath, source.Options{BlockSize: testBS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err = sink.OpenFile(dstPath, src.Geometry(), sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return srcPath, dstPath, src, dst
}

// TestFaultyFiles runs the engine over real files through the
// blockdifftest fault wrappers.
func TestFaultyFiles(t *testing.T) {
	t.Run("bad sector names block and side", func(t *testing.T) {
		_, _, src, dst := fileVolumes(t)
		fs := blockdifftest.NewFaultySource(src).FailIndex(17, syscall.EIO)
		_, err := Run(context.Background(), fs, dst, Options{Base: manifestOf(t, oldData)})
		var be *blockdiff.BlockError
		if !errors.Is(err, syscall.EIO) || !errors.As(err, &be) || be.Index != 17 || be.Side != "source" {
			t.Fatalf("got %v, want EIO at source block 17", err)
		}
	})
	for _, tc := range []struct {
		name   string
		faulty func(*blockdifftest.FaultySink) *blockdifftest.FaultySink
		is     error
	}{
		{"disk full then resume", func(f *blockdifftest.FaultySink) *blockdifftest.FaultySink { return f.FailFrom(4, syscall.ENOSPC) }, syscall.ENOSPC},
		{"torn write then resume", func(f *blockdifftest.FaultySink) *blockdifftest.FaultySink { return f.ShortCall(3) }, blockdifftest.ErrInjected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dstPath, src, dst := fileVolumes(t)
			journal := filepath.Join(t.TempDir(), "j")
			opts := Options{Base: manifestOf(t, oldData), Journal: journal, Concurrency: 1, TargetID: "file:" + dstPath}
			_, err := Run(context.Background(), src, tc.faulty(blockdifftest.NewFaultySink(dst)), opts)
			var be *blockdiff.BlockError
			if !errors.Is(err, tc.is) || !errors.As(err, &be) || be.Side != "sink" {
				t.Fatalf("got %v, want %v at the sink", err, tc.is)
			}
			if _, err := os.Stat(journal); err != nil {
				t.Fatalf("journal after the failure: %v", err)
			}
			res, err := Run(context.Background(), src, dst, opts)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if res.Stats.Resumed == 0 {
				t.Errorf("resume did not use the journal")
			}
			got, _ := os.ReadFile(dstPath)
			if string(got) != string(newData) {
				t.Errorf("target differs from the source after resume")
			}
		})
	}
}
