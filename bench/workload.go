package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// Version names one of the two volumes of a [Workload]: [V1] is the base,
// [V2] the changed one.
type Version int

// The two versions of a workload.
const (
	V1 Version = 1
	V2 Version = 2
)

// Class says how a [Workload] fills one block of [V1].
type Class uint8

const (
	// Unique is a block of pseudo-random bytes found nowhere else.
	Unique Class = iota
	// ZeroBlock is a block of zero bytes, written as a hole.
	ZeroBlock
	// Dup is a block whose bytes repeat one of [DupPool] shared contents.
	Dup
	// Outside is a block outside the data extents of a sparse workload: a
	// hole in both versions.
	Outside
)

// String returns "unique", "zero", "dup" or "outside".
func (c Class) String() string {
	switch c {
	case Unique:
		return "unique"
	case ZeroBlock:
		return "zero"
	case Dup:
		return "dup"
	case Outside:
		return "outside"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// DupPool is how many distinct contents the [Dup] blocks of a workload
// share.
const DupPool = 16

// sparseExtents is how many evenly spaced data extents a sparse workload
// (DataSize < Size) spreads its data over.
const sparseExtents = 64

// Workload is a seeded, deterministic pair of volume versions for
// benchmarks. Every block's bytes are a pure function of (Seed, version,
// index), so a block can be regenerated anywhere without holding the volume,
// and two machines given the same Workload produce identical files.
//
// In [V1], each block inside the data extents is, by independent draws,
// [ZeroBlock] with probability Zero, [Dup] with probability Dup, and
// [Unique] otherwise. In [V2], each such block is changed with probability
// Change, and a changed block holds fresh unique bytes (so a zero block of
// V1 may become data in V2); unchanged blocks are identical in both.
//
// The zero value is not usable: Size must be set. Other zero fields take
// their documented defaults.
type Workload struct {
	// Size is the volume size in bytes. It need not be a multiple of
	// BlockSize. Required.
	Size int64
	// BlockSize is the block size in bytes; default
	// [blockdiff.DefaultBlockSize] (512 KiB).
	BlockSize int
	// DataSize, when in (0, Size), makes a sparse workload: only about
	// DataSize bytes, in 64 evenly spaced extents, hold blocks; the rest of
	// the volume is a hole in both versions. Default 0: the whole volume
	// holds blocks.
	DataSize int64
	// Zero, Dup and Change are fractions in [0, 1] (Zero+Dup <= 1) of the
	// blocks in the data extents; default 0 each.
	Zero, Dup, Change float64
	// Seed selects the pseudo-random content; default 0 is a valid seed.
	Seed uint64
}

// withDefaults returns w with BlockSize filled in.
func (w Workload) withDefaults() Workload {
	if w.BlockSize == 0 {
		w.BlockSize = blockdiff.DefaultBlockSize
	}
	return w
}

// Validate reports an error wrapping [blockdiff.ErrGeometry] when w cannot
// be generated.
func (w Workload) Validate() error {
	w = w.withDefaults()
	g := w.Geometry()
	if err := g.Validate(); err != nil {
		return fmt.Errorf("bench: workload: %w", err)
	}
	if w.Size <= 0 {
		return fmt.Errorf("bench: workload size %d must be positive: %w", w.Size, blockdiff.ErrGeometry)
	}
	if w.DataSize < 0 || w.DataSize > w.Size {
		return fmt.Errorf("bench: workload data size %d must be in [0, size %d]: %w", w.DataSize, w.Size, blockdiff.ErrGeometry)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"zero", w.Zero}, {"dup", w.Dup}, {"change", w.Change}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return fmt.Errorf("bench: workload %s fraction %v must be in [0, 1]: %w", f.name, f.v, blockdiff.ErrGeometry)
		}
	}
	if w.Zero+w.Dup > 1 {
		return fmt.Errorf("bench: workload zero %v + dup %v fractions exceed 1: %w", w.Zero, w.Dup, blockdiff.ErrGeometry)
	}
	return nil
}

// Geometry returns the geometry of both versions.
func (w Workload) Geometry() blockdiff.Geometry {
	w = w.withDefaults()
	return blockdiff.Geometry{Size: w.Size, BlockSize: w.BlockSize}
}

// extents returns the data extents: the whole volume, or sparseExtents
// evenly spaced runs holding about DataSize bytes.
func (w Workload) extents() []blockdiff.Extent {
	w = w.withDefaults()
	n := w.Geometry().Blocks()
	if w.DataSize <= 0 || w.DataSize >= w.Size {
		return []blockdiff.Extent{{First: 0, Count: n}}
	}
	d := (w.DataSize + int64(w.BlockSize) - 1) / int64(w.BlockSize)
	e := min(int64(sparseExtents), d)
	out := make([]blockdiff.Extent, 0, e)
	for k := range e {
		cnt := d / e
		if k < d%e {
			cnt++
		}
		out = append(out, blockdiff.Extent{First: k * n / e, Count: cnt})
	}
	return out
}

// inData reports whether block i lies in a data extent, in O(1).
func (w Workload) inData(i int64) bool {
	w = w.withDefaults()
	if w.DataSize <= 0 || w.DataSize >= w.Size {
		return true
	}
	n := w.Geometry().Blocks()
	d := (w.DataSize + int64(w.BlockSize) - 1) / int64(w.BlockSize)
	e := min(int64(sparseExtents), d)
	start := func(k int64) int64 { return k * n / e }
	k := min(i*e/n, e-1)
	for k > 0 && start(k) > i {
		k--
	}
	for k+1 < e && start(k+1) <= i {
		k++
	}
	cnt := d / e
	if k < d%e {
		cnt++
	}
	return i >= start(k) && i < start(k)+cnt
}

// Salts keep the independent draws of one block apart.
const (
	saltClass  = 0x636c617373000001
	saltChange = 0x6368616e67650002
	saltV1     = 0x7631000000000003
	saltV2     = 0x7632000000000004
	saltDup    = 0x6475700000000005
	saltPick   = 0x7069636b00000006
)

// mix is the splitmix64 finaliser of a combination of its inputs.
func mix(seed, salt uint64, i int64) uint64 {
	z := seed ^ salt ^ (uint64(i) * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps a 64-bit hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// Class returns how block i of [V1] is filled.
func (w Workload) Class(i int64) Class {
	if !w.inData(i) {
		return Outside
	}
	u := unit(mix(w.Seed, saltClass, i))
	switch {
	case u < w.Zero:
		return ZeroBlock
	case u < w.Zero+w.Dup:
		return Dup
	}
	return Unique
}

// Changed reports whether block i differs between [V1] and [V2].
func (w Workload) Changed(i int64) bool {
	return w.inData(i) && unit(mix(w.Seed, saltChange, i)) < w.Change
}

// Block fills buf[:n] with block i of version v and returns n and the
// block's kind: [blockdiff.Hole] outside the data extents, [blockdiff.Zero]
// for a zero block, [blockdiff.Data] otherwise. buf must hold the block
// (Geometry().BlockLen(i) bytes). Block does not allocate.
func (w Workload) Block(v Version, i int64, buf []byte) (int, blockdiff.Kind) {
	w = w.withDefaults()
	n := w.Geometry().BlockLen(i)
	b := buf[:n]
	if v == V2 && w.Changed(i) {
		fill(b, mix(w.Seed, saltV2, i))
		return n, blockdiff.Data
	}
	switch w.Class(i) {
	case Outside:
		clear(b)
		return n, blockdiff.Hole
	case ZeroBlock:
		clear(b)
		return n, blockdiff.Zero
	case Dup:
		pick := int64(mix(w.Seed, saltPick, i) % DupPool)
		fill(b, mix(w.Seed, saltDup, pick))
		return n, blockdiff.Data
	}
	fill(b, mix(w.Seed, saltV1, i))
	return n, blockdiff.Data
}

// fill writes a wyrand stream keyed by key into b. A stream is never all
// zero bytes in practice (probability 2^-64 per word).
func fill(b []byte, key uint64) {
	s := key
	for len(b) >= 8 {
		s += 0xa0761d6478bd642f
		hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
		v := hi ^ lo
		b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
		b = b[8:]
	}
	if len(b) > 0 {
		s += 0xa0761d6478bd642f
		hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
		v := hi ^ lo
		for k := range b {
			b[k] = byte(v >> (8 * k))
		}
	}
}

// Counts is the make-up of a [Workload], counted in blocks.
type Counts struct {
	Blocks  int64 // all blocks of the volume
	Outside int64 // holes outside the data extents (both versions)
	Zero    int64 // zero blocks in V1
	Dup     int64 // blocks of V1 holding one of the DupPool shared contents
	Unique  int64 // blocks of V1 with content of their own
	Changed int64 // blocks that differ between V1 and V2
}

// Counts returns the make-up of w without generating any content.
func (w Workload) Counts() Counts {
	w = w.withDefaults()
	c := Counts{Blocks: w.Geometry().Blocks()}
	c.Outside = c.Blocks
	for _, e := range w.extents() {
		c.Outside -= e.Count
		for i := e.First; i < e.End(); i++ {
			switch w.Class(i) {
			case ZeroBlock:
				c.Zero++
			case Dup:
				c.Dup++
			default:
				c.Unique++
			}
			if w.Changed(i) {
				c.Changed++
			}
		}
	}
	return c
}

// Source returns version v of w as a [blockdiff.Source] that generates
// blocks on demand (no I/O, no memory beyond the caller's buffers). It is
// also a [blockdiff.Extenter] reporting the data extents.
func (w Workload) Source(v Version) (*Source, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if v != V1 && v != V2 {
		return nil, fmt.Errorf("bench: workload version %d: want 1 or 2", v)
	}
	return &Source{w: w.withDefaults(), v: v}, nil
}

// Source is one version of a [Workload] seen as a [blockdiff.Source]. It is
// safe for concurrent use.
type Source struct {
	w Workload
	v Version
}

var (
	_ blockdiff.Source   = (*Source)(nil)
	_ blockdiff.Extenter = (*Source)(nil)
)

// Geometry returns the workload's geometry.
func (s *Source) Geometry() blockdiff.Geometry { return s.w.Geometry() }

// ReadBlock generates block index into buf.
func (s *Source) ReadBlock(ctx context.Context, index int64, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	g := s.w.Geometry()
	if index < 0 || index >= g.Blocks() {
		return 0, &blockdiff.BlockError{Op: "read", Side: "source", Index: index,
			Err: fmt.Errorf("bench: block %d of %d: %w", index, g.Blocks(), blockdiff.ErrOutOfRange)}
	}
	if n := g.BlockLen(index); len(buf) < n {
		return 0, fmt.Errorf("bench: read block %d: buffer of %d bytes, need %d", index, len(buf), n)
	}
	n, _ := s.w.Block(s.v, index, buf)
	return n, nil
}

// Extents reports the data extents; outside them every block is a hole.
func (s *Source) Extents(ctx context.Context, fn func(blockdiff.Extent) error) error {
	for _, e := range s.w.extents() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Manifest returns the manifest of version v computed from the generator
// (hashing every data block), for checking what a copy produced.
func (w Workload) Manifest(ctx context.Context, v Version) (*blockdiff.Manifest, error) {
	src, err := w.Source(v)
	if err != nil {
		return nil, err
	}
	g := src.Geometry()
	m, err := blockdiff.NewManifest(g)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, k := src.w.Block(v, i, buf)
		var d blockdiff.Digest
		if k == blockdiff.Data {
			d = hashing.Sum256(buf[:n])
		}
		if err := m.Set(i, k, d); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Pair file names written by [Workload.WritePair].
const (
	V1Name = "v1.img"
	V2Name = "v2.img"
)

// WritePair writes both versions of w into dir as [V1Name] and [V2Name] in
// one streaming pass, holding two blocks in memory. Zero blocks and blocks
// outside the data extents are left as holes, so the files are sparse. An
// existing file is replaced.
func (w Workload) WritePair(ctx context.Context, dir string) (err error) {
	if err := w.Validate(); err != nil {
		return err
	}
	w = w.withDefaults()
	var files [2]*os.File
	for k, name := range []string{V1Name, V2Name} {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("bench: create %s: %w", p, err)
		}
		files[k] = f
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("bench: close %s: %w", p, cerr)
			}
		}()
	}
	g := w.Geometry()
	b1 := make([]byte, g.BlockSize)
	b2 := make([]byte, g.BlockSize)
	for _, e := range w.extents() {
		for i := e.First; i < e.End(); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, k1 := w.Block(V1, i, b1)
			if k1 == blockdiff.Data {
				if _, err := files[0].WriteAt(b1[:n], g.Offset(i)); err != nil {
					return fmt.Errorf("bench: write %s block %d: %w", files[0].Name(), i, err)
				}
			}
			src := b1
			k2 := k1
			if w.Changed(i) {
				_, k2 = w.Block(V2, i, b2)
				src = b2
			}
			if k2 == blockdiff.Data {
				if _, err := files[1].WriteAt(src[:n], g.Offset(i)); err != nil {
					return fmt.Errorf("bench: write %s block %d: %w", files[1].Name(), i, err)
				}
			}
		}
	}
	for _, f := range files {
		if err := f.Truncate(g.Size); err != nil {
			return fmt.Errorf("bench: size %s to %d bytes: %w", f.Name(), g.Size, err)
		}
	}
	return nil
}

// WriteFile writes version v of w to path, sparse like [Workload.WritePair].
func (w Workload) WriteFile(ctx context.Context, path string, v Version) (err error) {
	src, err := w.Source(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("bench: create %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench: close %s: %w", path, cerr)
		}
	}()
	g := src.Geometry()
	buf := make([]byte, g.BlockSize)
	err = src.Extents(ctx, func(e blockdiff.Extent) error {
		for i := e.First; i < e.End(); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, k := w.Block(v, i, buf)
			if k != blockdiff.Data {
				continue
			}
			if _, err := f.WriteAt(buf[:n], g.Offset(i)); err != nil {
				return fmt.Errorf("bench: write %s block %d: %w", path, i, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := f.Truncate(g.Size); err != nil {
		return fmt.Errorf("bench: size %s to %d bytes: %w", path, g.Size, err)
	}
	return nil
}

// InfoName is the file in which genpair records a pair's [Info].
const InfoName = "workload.json"

// Info describes a generated pair: the workload that made it and its make-up.
type Info struct {
	Workload Workload `json:"workload"`
	Counts   Counts   `json:"counts"`
}

// WriteInfo writes the [Info] of w to dir/[InfoName].
func (w Workload) WriteInfo(dir string) error {
	b, err := json.MarshalIndent(Info{Workload: w.withDefaults(), Counts: w.Counts()}, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode workload: %w", err)
	}
	p := filepath.Join(dir, InfoName)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write %s: %w", p, err)
	}
	return nil
}

// ReadInfo reads dir/[InfoName] as written by [Workload.WriteInfo].
func ReadInfo(dir string) (Info, error) {
	var in Info
	p := filepath.Join(dir, InfoName)
	b, err := os.ReadFile(p)
	if err != nil {
		return in, fmt.Errorf("bench: %w (generate the pair with bench/cmd/genpair)", err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("bench: %s: %w", p, err)
	}
	return in, in.Workload.Validate()
}
