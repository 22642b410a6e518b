package blockdiff

import (
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
)

// DiffStats counts what a [ChangeSet] holds. Blocks = Unchanged + Changed +
// Zeroed.
type DiffStats struct {
	// Blocks is the number of blocks in the target.
	Blocks int64 `json:"blocks"`
	// Unchanged counts target blocks whose content equals the base's.
	Unchanged int64 `json:"unchanged"`
	// Changed counts target Data blocks whose content differs from the
	// base's: they must be written.
	Changed int64 `json:"changed"`
	// Zeroed counts target Zero or Hole blocks where the base had Data:
	// they must become zero.
	Zeroed int64 `json:"zeroed"`
	// Holes and Zeros count target blocks of kind Hole and Zero.
	Holes int64 `json:"holes"`
	Zeros int64 `json:"zeros"`
	// Distinct counts distinct digests among the Changed blocks.
	Distinct int64 `json:"distinct"`
	// Bytes is the number of bytes to move: one block length per distinct
	// content.
	Bytes int64 `json:"bytes"`
}

// Group is one distinct content a [ChangeSet] needs written.
type Group struct {
	// Digest names the content.
	Digest Digest
	// Len is the content's length in bytes (a block length).
	Len int
	// Indices are the target blocks to write with this content,
	// ascending. The slice is only valid during the callback and must not
	// be modified.
	Indices []int64
	// Local is -1, or, after [ChangeSet.FindLocal], an unchanged index
	// whose block already holds Digest in the target: it is never
	// overwritten by the change set, so a sink can copy from it instead
	// of receiving the bytes.
	Local int64
}

// ChangeSet is what turns base into target: the Data blocks to write,
// grouped by digest, and the runs to zero. It is stored compactly: the
// changed indices sorted by group (8 bytes each), each distinct digest
// once, and the zero runs.
type ChangeSet struct {
	// Geometry is the target's geometry.
	Geometry Geometry
	// Stats counts the blocks.
	Stats DiffStats

	baseGeom Geometry
	digests  []Digest // one per group, in order of first index
	off      []int64  // group g's indices are byGroup[off[g]:off[g+1]]
	byGroup  []int64
	local    []int64 // per group; nil until FindLocal
	zeros    []Extent
}

// Len returns the number of blocks the change set touches: changed plus
// zeroed.
func (c *ChangeSet) Len() int64 { return c.Stats.Changed + c.Stats.Zeroed }

// Groups calls fn once for each distinct content to write, in ascending
// order of its first index. The first error from fn stops the walk and is
// returned.
func (c *ChangeSet) Groups(fn func(g Group) error) error {
	for g := range c.digests {
		idx := c.byGroup[c.off[g]:c.off[g+1]:c.off[g+1]]
		local := int64(-1)
		if c.local != nil {
			local = c.local[g]
		}
		if err := fn(Group{Digest: c.digests[g], Len: c.Geometry.BlockLen(idx[0]), Indices: idx, Local: local}); err != nil {
			return err
		}
	}
	return nil
}

// ZeroRuns calls fn for each run of blocks that must become zero (target
// Zero or Hole where the base had Data), ascending and without overlap.
// The first error from fn stops the walk and is returned.
func (c *ChangeSet) ZeroRuns(fn func(Extent) error) error {
	for _, e := range c.zeros {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Diff compares base with target, both walked in index order. Block sizes
// must match (else [ErrGeometry]). Blocks missing from base (target grew)
// count as holes; base blocks past target's end are ignored, but base is
// still read to its end so that a [Reader] verifies its trailer. Zero and
// Hole are the same content. An iterator that ends early, repeats or skips
// an index gives an error wrapping [ErrCorrupt]; the iterators' own errors
// are returned wrapped.
//
// Memory does not grow with the volume, only with the change: about 20
// bytes per changed block and 80 per distinct changed digest while
// diffing, then 8 and 48 in the returned ChangeSet (the digest index is
// dropped). Two manifests on disk are diffed a run at a time through
// [Reader]s without loading either.
func Diff(base, target Iterator) (*ChangeSet, error) {
	bg, tg := base.Geometry(), target.Geometry()
	if err := tg.Validate(); err != nil {
		return nil, fmt.Errorf("blockdiff: diff: target: %w", err)
	}
	if bg.BlockSize != tg.BlockSize {
		return nil, fmt.Errorf("blockdiff: diff: base has %d-byte blocks, target %d-byte blocks: compare manifests made with the same block size: %w",
			bg.BlockSize, tg.BlockSize, ErrGeometry)
	}
	b := &builder{ids: newDigestIndex()}
	b.cs.Geometry, b.cs.baseGeom = tg, bg
	n, nb := tg.Blocks(), bg.Blocks()
	b.cs.Stats.Blocks = n

	bm, okb := base.(*manifestIter)
	tm, okt := target.(*manifestIter)
	if okb && okt && bm.i == 0 && tm.i == 0 {
		b.diffManifests(bm.m, tm.m)
		bm.i, tm.i = nb, n
	} else if bc, tc := newRunCursor(base, "base"), newRunCursor(target, "target"); bc != nil && tc != nil {
		if err := b.diffRuns(bc, tc); err != nil {
			return nil, err
		}
	} else if err := b.diffIters(base, target, n, nb); err != nil {
		return nil, err
	}
	if b.err != nil {
		return nil, b.err
	}
	return b.finish(), nil
}

type builder struct {
	cs  ChangeSet
	ids *digestIndex
	err error    // set when the change set outgrows its 32-bit group ids
	idx []int64  // changed indices, ascending
	gid []uint32 // their groups
	zr  Extent   // pending zero run
}

func (b *builder) changed(i int64, d *Digest) {
	if len(b.ids.digests) >= maxGroups {
		if b.err == nil {
			b.err = fmt.Errorf("blockdiff: diff: more than %d distinct changed blocks at block %d: use a larger block size", maxGroups, i)
		}
		return
	}
	b.idx = append(b.idx, i)
	b.gid = append(b.gid, b.ids.add(d))
}

// maxGroups bounds the distinct digests of a change set (group ids are 32
// bits).
const maxGroups = 1<<32 - 2

func (b *builder) zeroed(i int64) {
	if b.zr.Count > 0 && b.zr.End() == i {
		b.zr.Count++
		return
	}
	if b.zr.Count > 0 {
		b.cs.zeros = append(b.cs.zeros, b.zr)
	}
	b.zr = Extent{First: i, Count: 1}
}

// diffManifests is the fast path for two in-memory manifests. It walks
// page by page so the inner loop indexes plain slices.
func (b *builder) diffManifests(bm, tm *Manifest) {
	n, nb := int64(len(tm.kinds)), int64(len(bm.kinds))
	var unchanged, zeros, holes int64
	for lo := int64(0); lo < n; lo += digestPage {
		hi := min(n, lo+digestPage)
		tk, tp := tm.kinds[lo:hi], tm.pages[lo/digestPage]
		var bk []Kind
		var bp []Digest
		if lo < nb {
			bk, bp = bm.kinds[lo:min(hi, nb)], bm.pages[lo/digestPage]
		}
		for j, k := range tk {
			bkj := Hole
			if j < len(bk) {
				bkj = bk[j]
			}
			if k == Data {
				if bkj == Data && digestEq(&bp[j], &tp[j]) {
					unchanged++
				} else {
					b.changed(lo+int64(j), &tp[j])
				}
				continue
			}
			if k == Zero {
				zeros++
			} else {
				holes++
			}
			if bkj == Data {
				b.zeroed(lo + int64(j))
			} else {
				unchanged++
			}
		}
	}
	b.cs.Stats.Unchanged += unchanged
	b.cs.Stats.Zeros += zeros
	b.cs.Stats.Holes += holes
}

func (b *builder) diffIters(base, target Iterator, n, nb int64) error {
	s := &b.cs.Stats
	for i := int64(0); i < n; i++ {
		te, err := nextAt(target, "diff", "target", i, n)
		if err != nil {
			return err
		}
		bk := Hole
		var be Entry
		if i < nb {
			if be, err = nextAt(base, "diff", "base", i, nb); err != nil {
				return err
			}
			bk = be.Kind
		}
		if te.Kind == Data {
			if bk == Data && be.Digest == te.Digest {
				s.Unchanged++
			} else {
				b.changed(i, &te.Digest)
			}
			continue
		}
		if te.Kind == Zero {
			s.Zeros++
		} else {
			s.Holes++
		}
		if bk == Data {
			b.zeroed(i)
		} else {
			s.Unchanged++
		}
	}
	if err := drain(target, "diff", "target", n, n); err != nil {
		return err
	}
	return drain(base, "diff", "base", min(n, nb), nb)
}

// nextAt returns the entry at index i of an iterator of n blocks.
func nextAt(it Iterator, op, side string, i, n int64) (Entry, error) {
	e, err := it.Next()
	switch {
	case err == io.EOF:
		return e, fmt.Errorf("blockdiff: %s: %s ended at block %d of %d: %w", op, side, i, n, ErrCorrupt)
	case err != nil:
		return e, fmt.Errorf("blockdiff: %s: %s: %w", op, side, err)
	case e.Index != i:
		return e, fmt.Errorf("blockdiff: %s: %s gave block %d, want block %d (iterators go in index order): %w", op, side, e.Index, i, ErrCorrupt)
	case e.Kind > Hole:
		return e, fmt.Errorf("blockdiff: %s: %s block %d has invalid kind %d: %w", op, side, i, e.Kind, ErrCorrupt)
	}
	return e, nil
}

// drain reads an iterator from index i to its end, so that a Reader
// verifies its trailer.
func drain(it Iterator, op, side string, i, n int64) error {
	for ; i < n; i++ {
		if _, err := nextAt(it, op, side, i, n); err != nil {
			return err
		}
	}
	if e, err := it.Next(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("blockdiff: %s: %s gave block %d past its %d blocks: %w", op, side, e.Index, n, ErrCorrupt)
		}
		return fmt.Errorf("blockdiff: %s: %s: %w", op, side, err)
	}
	return nil
}

// finish sorts the changed indices by group (a counting sort, stable so
// each group stays ascending) and drops the digest index.
func (b *builder) finish() *ChangeSet {
	c := &b.cs
	c.digests = b.ids.digests
	if b.zr.Count > 0 {
		c.zeros = append(c.zeros, b.zr)
	}
	for _, z := range c.zeros {
		c.Stats.Zeroed += z.Count
	}
	c.Stats.Changed = int64(len(b.idx))
	c.Stats.Distinct = int64(len(c.digests))
	c.off = make([]int64, len(c.digests)+1)
	for _, g := range b.gid {
		c.off[g+1]++
	}
	for g := range c.digests {
		c.off[g+1] += c.off[g]
	}
	c.byGroup = make([]int64, len(b.idx))
	pos := make([]int64, len(c.digests))
	copy(pos, c.off)
	for k, g := range b.gid {
		c.byGroup[pos[g]] = b.idx[k]
		pos[g]++
	}
	for g := range c.digests {
		c.Stats.Bytes += int64(c.Geometry.BlockLen(c.byGroup[c.off[g]]))
	}
	b.idx, b.gid, b.ids = nil, nil, nil
	return c
}

// FindLocal walks base again (an iterator over the same base given to
// [Diff]) and sets [Group.Local] for each group whose digest some
// unchanged block already holds in the target. Unchanged blocks are never
// written by the change set, so a sink may copy from them while it
// applies it. base must have the geometry Diff saw (else [ErrGeometry]).
// FindLocal reads base to its end; calling it again recomputes Local.
func (c *ChangeSet) FindLocal(base Iterator) error {
	if bg := base.Geometry(); bg != c.baseGeom {
		return fmt.Errorf("blockdiff: find local: base geometry %v differs from the base of the diff (%v): pass the same base: %w", bg, c.baseGeom, ErrGeometry)
	}
	n, nb := c.Geometry.Blocks(), c.baseGeom.Blocks()
	// touched marks the target blocks the change set writes or zeroes.
	touched := make([]uint64, (n+63)/64)
	for _, i := range c.byGroup {
		touched[i/64] |= 1 << (i % 64)
	}
	for _, z := range c.zeros {
		for i := z.First; i < z.End(); i++ {
			touched[i/64] |= 1 << (i % 64)
		}
	}
	ids := &digestIndex{seed: maphash.MakeSeed(), digests: c.digests}
	ids.resize(max(1<<10, 1<<bits.Len(uint(2*len(c.digests)))))
	local := make([]int64, len(c.digests))
	for g := range local {
		local[g] = -1
	}
	left := len(local)
	lim := min(n, nb)
	for i := int64(0); i < lim; i++ {
		e, err := nextAt(base, "find local", "base", i, nb)
		if err != nil {
			return err
		}
		if left == 0 || e.Kind != Data || touched[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		if g, ok := ids.lookup(&e.Digest); ok && local[g] < 0 {
			local[g] = i
			left--
		}
	}
	if err := drain(base, "find local", "base", lim, nb); err != nil {
		return err
	}
	c.local = local
	return nil
}
