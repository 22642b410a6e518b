package cas

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
	"golang.org/x/sync/errgroup"
)

// SnapshotInfo describes a named snapshot.
type SnapshotInfo struct {
	Name     string
	Time     time.Time         // when the backup was committed (or the time it was given)
	Tags     map[string]string // free-form labels given at backup
	Geometry blockdiff.Geometry
	Manifest blockdiff.Digest // ID of the manifest object (SHA-256 of its encoding)
	Origin   string           // the manifest's Origin

	DataBlocks, ZeroBlocks, HoleBlocks int64
}

// snapshotJSON is the stored form of a snapshot object.
type snapshotJSON struct {
	Name       string            `json:"name"`
	Time       time.Time         `json:"time"`
	Tags       map[string]string `json:"tags,omitempty"`
	Size       int64             `json:"size"`
	BlockSize  int               `json:"block_size"`
	Manifest   string            `json:"manifest"`
	Origin     string            `json:"origin,omitempty"`
	DataBlocks int64             `json:"data_blocks"`
	ZeroBlocks int64             `json:"zero_blocks"`
	HoleBlocks int64             `json:"hole_blocks"`
}

func (si SnapshotInfo) marshal() []byte {
	b, _ := json.MarshalIndent(snapshotJSON{
		Name: si.Name, Time: si.Time.UTC(), Tags: si.Tags,
		Size: si.Geometry.Size, BlockSize: si.Geometry.BlockSize,
		Manifest: si.Manifest.String(), Origin: si.Origin,
		DataBlocks: si.DataBlocks, ZeroBlocks: si.ZeroBlocks, HoleBlocks: si.HoleBlocks,
	}, "", "  ")
	return append(b, '\n')
}

func unmarshalInfo(name string, b []byte) (SnapshotInfo, error) {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return SnapshotInfo{}, fmt.Errorf("cas: snapshot %q: %w: %w", name, blockdiff.ErrCorrupt, err)
	}
	id, err := blockdiff.ParseDigest(j.Manifest)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("cas: snapshot %q: manifest ID: %w: %w", name, blockdiff.ErrCorrupt, err)
	}
	si := SnapshotInfo{
		Name: j.Name, Time: j.Time, Tags: j.Tags,
		Geometry: blockdiff.Geometry{Size: j.Size, BlockSize: j.BlockSize},
		Manifest: id, Origin: j.Origin,
		DataBlocks: j.DataBlocks, ZeroBlocks: j.ZeroBlocks, HoleBlocks: j.HoleBlocks,
	}
	if si.Name != name {
		return SnapshotInfo{}, fmt.Errorf("cas: snapshot %q: object names itself %q: %w", name, si.Name, blockdiff.ErrCorrupt)
	}
	if err := si.Geometry.Validate(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("cas: snapshot %q: %w", name, err)
	}
	return si, nil
}

// Show returns the description of snapshot name. A missing snapshot wraps
// [blockdiff.ErrNotFound].
func (s *Store) Show(ctx context.Context, name string) (SnapshotInfo, error) {
	if err := ValidName(name); err != nil {
		return SnapshotInfo{}, err
	}
	b, err := s.b.Get(ctx, snapPrefix+name)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("cas: snapshot %q: %w", name, err)
	}
	return unmarshalInfo(name, b)
}

// List returns every snapshot, sorted by time and then name.
func (s *Store) List(ctx context.Context) ([]SnapshotInfo, error) {
	var names []string
	err := s.b.List(ctx, snapPrefix, func(oi ObjectInfo) error {
		if n := strings.TrimPrefix(oi.Key, snapPrefix); ValidName(n) == nil {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cas: list snapshots: %w", err)
	}
	infos := make([]SnapshotInfo, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for i, n := range names {
		g.Go(func() (err error) {
			infos[i], err = s.Show(gctx, n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(infos, func(a, b SnapshotInfo) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return infos, nil
}

// Delete removes snapshot name. Its chunks stay until [Store.GC] finds
// them unreferenced. A missing snapshot wraps [blockdiff.ErrNotFound].
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.Show(ctx, name); err != nil {
		return err
	}
	if err := s.b.Delete(ctx, snapPrefix+name); err != nil {
		return fmt.Errorf("cas: delete snapshot %q: %w", name, err)
	}
	return nil
}

// readManifest fetches manifest id and checks it hashes to its name.
func (s *Store) readManifest(ctx context.Context, id blockdiff.Digest) (*blockdiff.Manifest, error) {
	b, err := s.b.Get(ctx, manPrefix+id.String())
	if err != nil {
		return nil, fmt.Errorf("cas: manifest %s: %w", id, err)
	}
	if got := blockdiff.Digest(hashing.Sum256(b)); got != id {
		return nil, fmt.Errorf("cas: manifest %s: object hashes to %s: %w", id, got, blockdiff.ErrChecksum)
	}
	m, err := blockdiff.ReadManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cas: manifest %s: %w", id, err)
	}
	return m, nil
}

// Snapshot is a stored snapshot opened for restore: a [blockdiff.Source]
// that is also a [blockdiff.Manifester] and a [blockdiff.Extenter]. It is
// safe for concurrent use.
type Snapshot struct {
	s    *Store
	info SnapshotInfo
	m    *blockdiff.Manifest
}

var (
	_ blockdiff.Source     = (*Snapshot)(nil)
	_ blockdiff.Manifester = (*Snapshot)(nil)
	_ blockdiff.Extenter   = (*Snapshot)(nil)
)

// OpenSnapshot opens snapshot name for reading. Its manifest is fetched,
// verified against its ID and held in memory (about 1 byte per block plus
// 32 per data block).
func (s *Store) OpenSnapshot(ctx context.Context, name string) (*Snapshot, error) {
	info, err := s.Show(ctx, name)
	if err != nil {
		return nil, err
	}
	m, err := s.readManifest(ctx, info.Manifest)
	if err != nil {
		return nil, fmt.Errorf("cas: snapshot %q: %w", name, err)
	}
	if m.Geometry() != info.Geometry {
		return nil, fmt.Errorf("cas: snapshot %q: manifest geometry %v, snapshot says %v: %w", name, m.Geometry(), info.Geometry, blockdiff.ErrGeometry)
	}
	return &Snapshot{s: s, info: info, m: m}, nil
}

// Info returns the snapshot's description.
func (sn *Snapshot) Info() SnapshotInfo {
	info := sn.info
	info.Tags = maps.Clone(info.Tags)
	return info
}

// Geometry returns the volume's geometry.
func (sn *Snapshot) Geometry() blockdiff.Geometry { return sn.info.Geometry }

// Manifest returns the snapshot's manifest without reading any chunk. The
// caller must not modify it.
func (sn *Snapshot) Manifest(ctx context.Context) (*blockdiff.Manifest, error) {
	return sn.m, ctx.Err()
}

// Extents calls fn for each run of data blocks; zero blocks and holes are
// outside every run.
func (sn *Snapshot) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	n := sn.m.Len()
	for i := int64(0); i < n; {
		if sn.m.Kind(i) != blockdiff.Data {
			i++
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		j := i + 1
		for j < n && sn.m.Kind(j) == blockdiff.Data {
			j++
		}
		if err := fn(blockdiff.Extent{First: i, Count: j - i}); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// ReadBlock reads block index into buf. Zero blocks and holes are filled
// with zeros without touching the backend; data blocks are fetched,
// decompressed and verified against their digest (a mismatch wraps
// [blockdiff.ErrChecksum]).
func (sn *Snapshot) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	g := sn.info.Geometry
	if index < 0 || index >= g.Blocks() {
		return 0, &blockdiff.BlockError{Op: "read", Side: "source", Index: index,
			Err: fmt.Errorf("cas: snapshot %q has %d blocks: %w", sn.info.Name, g.Blocks(), blockdiff.ErrOutOfRange)}
	}
	n := g.BlockLen(index)
	if len(buf) < n {
		return 0, &blockdiff.BlockError{Op: "read", Side: "source", Index: index,
			Err: fmt.Errorf("cas: buffer of %d bytes is shorter than the block (%d)", len(buf), n)}
	}
	e := sn.m.Entry(index)
	if e.Kind != blockdiff.Data {
		clear(buf[:n])
		return n, nil
	}
	out, err := sn.s.ReadChunk(ctx, e.Digest, buf[:0:n])
	if err == nil && len(out) != n {
		err = fmt.Errorf("cas: chunk %s: %d bytes, the block has %d: %w", e.Digest, len(out), n, blockdiff.ErrChecksum)
	}
	if err != nil {
		return 0, &blockdiff.BlockError{Op: "read", Side: "source", Index: index, Err: err}
	}
	return n, nil
}

// Close releases the snapshot. It never fails.
func (sn *Snapshot) Close() error { return nil }

// ID names the snapshot stably across processes,
// "cas:<store id>#<snapshot name>".
func (sn *Snapshot) ID() string { return "cas:" + sn.s.id + "#" + sn.info.Name }
