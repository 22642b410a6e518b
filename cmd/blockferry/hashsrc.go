package main

import (
	"context"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// hashSource hashes every block of src into a manifest and returns it with
// the number of bytes read. Holes are not read.
//
// TODO(cli): switch to blockdiff.HashSource (parallel, batched SIMD) once
// it lands; this sequential loop only keeps the CLI usable until then.
func hashSource(ctx context.Context, src blockdiff.Source, _ int, bar *progressBar) (*blockdiff.Manifest, int64, error) {
	g := src.Geometry()
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		return nil, 0, err
	}
	var exts []blockdiff.Extent
	if x, ok := src.(blockdiff.Extenter); ok {
		err = x.Extents(ctx, func(e blockdiff.Extent) error { exts = append(exts, e); return nil })
		if err != nil {
			return nil, 0, err
		}
	} else {
		exts = []blockdiff.Extent{{First: 0, Count: g.Blocks()}}
	}
	buf := make([]byte, g.BlockSize)
	var read int64
	for _, e := range exts {
		for i := e.First; i < e.End(); i++ {
			n, err := src.ReadBlock(ctx, i, buf)
			if err != nil {
				return nil, read, err
			}
			read += int64(n)
			if hashing.IsZero(buf[:n]) {
				err = m.Set(i, blockdiff.Zero, blockdiff.Digest{})
			} else {
				err = m.Set(i, blockdiff.Data, hashing.Sum256(buf[:n]))
			}
			if err != nil {
				return nil, read, err
			}
			bar.Update(g.Offset(i+1), g.Size)
		}
	}
	return m, read, nil
}
