package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blockferry/blockferry/blockdiff"
)

// hashSource hashes every block of src into an in-memory manifest (holes
// are not read) and returns it with the number of bytes read.
func hashSource(ctx context.Context, src blockdiff.Source, conc int, bar *progressBar) (*blockdiff.Manifest, int64, error) {
	var read int64
	m, err := blockdiff.HashSource(ctx, src, blockdiff.HashOptions{
		Concurrency: conc,
		Progress: func(p blockdiff.HashProgress) {
			read = p.Read
			bar.Update(p.Bytes, src.Geometry().Size)
		},
	})
	return m, read, err
}

// streamedManifest is what hashToFile learned while streaming.
type streamedManifest struct {
	id     blockdiff.Digest
	counts kindCounts
	read   int64
}

// hashToFile hashes src and streams its manifest into path without holding
// the digest list in memory: it writes a temporary file beside path, syncs
// it and renames it over path, so path holds either its old content or the
// whole new manifest.
func hashToFile(ctx context.Context, src blockdiff.Source, origin, path string, conc int, bar *progressBar) (_ streamedManifest, err error) {
	var sm streamedManifest
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	mw, err := blockdiff.NewWriter(bw, src.Geometry(), origin)
	if err != nil {
		return sm, err
	}
	g := src.Geometry()
	err = blockdiff.HashEntries(ctx, src, blockdiff.HashOptions{
		Concurrency: conc,
		Progress: func(p blockdiff.HashProgress) {
			sm.read = p.Read
			bar.Update(p.Bytes, g.Size)
		},
	}, func(e blockdiff.Entry) error {
		switch e.Kind {
		case blockdiff.Data:
			sm.counts.Data++
		case blockdiff.Zero:
			sm.counts.Zero++
		default:
			sm.counts.Holes++
		}
		return mw.Append(e)
	})
	if err != nil {
		return sm, err
	}
	if err := mw.Close(); err != nil {
		return sm, err
	}
	sm.id = mw.ID()
	if err := bw.Flush(); err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return sm, fmt.Errorf("write manifest %s: %w", path, err)
	}
	return sm, nil
}
