package blockdiff

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"unsafe"
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
	off      []int64  // group g's indices are byGroup[off[g]:off[g+1]]; nil: byGroup[g] alone
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
		var idx []int64
		if c.off == nil { // every group is one block
			idx = c.byGroup[g : g+1 : g+1]
		} else {
			idx = c.byGroup[c.off[g]:c.off[g+1]:c.off[g+1]]
		}
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
// Two in-memory manifests ([Manifest.Iter] at its start on both sides) are
// compared page by page: kinds and 4096-digest pages that are byte for byte
// equal are skipped at memory speed, and only the pages that differ are
// walked block by block. Two manifests on disk are diffed a run at a time
// through [Reader]s without loading either.
//
// Memory grows with the change, not with the volume. While diffing, each
// changed block costs 8 bytes for its index, 32 for its digest and about
// 13 for the digest table (which is then dropped); two in-memory manifests
// add one bit per target block (a map of the changed blocks, 4 MiB for
// 32 Mi blocks, so the rest is allocated once at its size), a streaming
// diff the slack of growing slices instead. The returned ChangeSet keeps 8
// bytes per changed block and 32 per distinct digest, plus 8 per distinct
// digest when some content repeats.
func Diff(base, target Iterator) (*ChangeSet, error) {
	bg, tg := base.Geometry(), target.Geometry()
	if err := tg.Validate(); err != nil {
		return nil, fmt.Errorf("blockdiff: diff: target: %w", err)
	}
	if bg.BlockSize != tg.BlockSize {
		return nil, fmt.Errorf("blockdiff: diff: base has %d-byte blocks, target %d-byte blocks: compare manifests made with the same block size: %w",
			bg.BlockSize, tg.BlockSize, ErrGeometry)
	}
	b := &builder{}
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
	if err := b.finish(); err != nil {
		return nil, err
	}
	return &b.cs, nil
}

// builder collects a change set in two passes: the walk records the
// changed indices (and, when streaming, their digests) and the zero runs;
// finish then groups the digests, with a table sized once for the number
// of changed blocks.
type builder struct {
	cs   ChangeSet
	idx  []int64  // changed indices, ascending
	cand []Digest // their digests; nil when tm holds them
	zr   Extent   // pending zero run

	// In-memory target: the walk only sets a bit per changed block and
	// counts them, so finish allocates idx and cand once at their size
	// and gathers the digests from tm.
	tm   *Manifest
	set  []uint64 // bit i: block i changed
	nset int
}

// changed records target block i, of digest d, as changed.
func (b *builder) changed(i int64, d *Digest) {
	b.idx = append(b.idx, i)
	b.cand = append(b.cand, *d)
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

// kindBytes returns ks as bytes, for bytes.Equal and bytes.Count.
func kindBytes(ks []Kind) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ks))), len(ks))
}

// digestBytes returns ds as bytes, for bytes.Equal (runtime.memequal, tens
// of GB/s, instead of a compare per digest).
func digestBytes(ds []Digest) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ds))), len(ds)*DigestSize)
}

// diffSpan is how many blocks diffManifests compares at once inside a page
// that differs, before looking at single blocks.
const diffSpan = 32

// diffManifests is the fast path for two in-memory manifests. A page whose
// kinds and digests are byte for byte equal on both sides is skipped; in a
// page that differs, spans of diffSpan blocks are compared the same way,
// and only spans that differ are walked block by block. It records changed
// indices only: finish gathers their digests from tm.
func (b *builder) diffManifests(bm, tm *Manifest) {
	n, nb := int64(len(tm.kinds)), int64(len(bm.kinds))
	b.tm, b.set = tm, make([]uint64, (n+63)/64)
	kb := kindBytes(tm.kinds)
	b.cs.Stats.Zeros = int64(bytes.Count(kb, []byte{byte(Zero)}))
	b.cs.Stats.Holes = int64(bytes.Count(kb, []byte{byte(Hole)}))
	for lo := int64(0); lo < n; lo += digestPage {
		hi := min(n, lo+digestPage)
		tk, tp := tm.kinds[lo:hi], tm.pages[lo/digestPage]
		if lo >= nb || hi > nb { // past the base's end the base is holes
			var bk []Kind
			var bp []Digest
			if lo < nb {
				bk, bp = bm.kinds[lo:nb], bm.pages[lo/digestPage]
			}
			b.diffBlocks(lo, bk, tk[:len(bk)], bp, tp)
			for j, k := range tk[len(bk):] {
				if k == Data {
					i := lo + int64(len(bk)+j)
					b.set[i/64] |= 1 << (i % 64)
					b.nset++
				}
			}
			continue
		}
		bk, bp := bm.kinds[lo:hi], bm.pages[lo/digestPage]
		if bytes.Equal(kindBytes(bk), kindBytes(tk)) &&
			(tp == nil || bp != nil && bytes.Equal(digestBytes(bp[:len(tk)]), digestBytes(tp[:len(tk)]))) {
			continue // tp == nil: no data on either side
		}
		for s := 0; s < len(tk); s += diffSpan {
			e := min(len(tk), s+diffSpan)
			if bytes.Equal(kindBytes(bk[s:e]), kindBytes(tk[s:e])) &&
				(tp == nil || bp != nil && bytes.Equal(digestBytes(bp[s:e]), digestBytes(tp[s:e]))) {
				continue
			}
			b.diffBlocks(lo+int64(s), bk[s:e], tk[s:e], span(bp, s, e), span(tp, s, e))
		}
	}
}

// span returns page[s:e], or nil for a page without data.
func span(page []Digest, s, e int) []Digest {
	if page == nil {
		return nil
	}
	return page[s:e]
}

// diffBlocks compares blocks lo, lo+1, ... of base (kinds bk, digest page
// slice bp) and target (tk, tp), all the same length except a nil page
// (no data on that side).
func (b *builder) diffBlocks(lo int64, bk, tk []Kind, bp, tp []Digest) {
	bk = bk[:len(tk)]
	for j, k := range tk {
		if k == Data {
			if bk[j] != Data || !digestEq(&bp[j], &tp[j]) {
				i := lo + int64(j)
				b.set[i/64] |= 1 << (i % 64)
				b.nset++
			}
		} else if bk[j] == Data {
			b.zeroed(lo + int64(j))
		}
	}
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
			if bk != Data || be.Digest != te.Digest {
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

// finish groups the changed blocks by digest and fills in the stats. The
// digests are deduplicated in place (the distinct ones move to the front,
// in order of first index) through a table sized once for all of them.
// When every changed block is distinct, the common case, the changed
// indices are the groups as they stand; otherwise a counting sort, stable
// so each group stays ascending, orders them by group.
func (b *builder) finish() error {
	c := &b.cs
	if b.zr.Count > 0 {
		c.zeros = append(c.zeros, b.zr)
	}
	for _, z := range c.zeros {
		c.Stats.Zeroed += z.Count
	}
	if b.tm != nil {
		b.idx = make([]int64, 0, b.nset)
		for w, word := range b.set {
			for word != 0 {
				b.idx = append(b.idx, int64(w)*64+int64(bits.TrailingZeros64(word)))
				word &= word - 1
			}
		}
		b.set = nil
	}
	cnt := len(b.idx)
	c.Stats.Changed = int64(cnt)
	c.Stats.Unchanged = c.Stats.Blocks - c.Stats.Changed - c.Stats.Zeroed
	if cnt == 0 {
		return nil
	}
	cand := b.cand
	if b.tm != nil {
		cand = make([]Digest, cnt)
	}
	x := newDigestIndex(cnt)
	x.digests = cand[:0] // add appends in place: id <= k
	var gid []uint32     // group of each changed block; nil while all are distinct
	// The table is far larger than the caches, so the blocks go in batches:
	// first gather the digests, hash them and load their table slots,
	// loads that do not wait for each other, then insert them.
	var hs [64]uint64
	var touch uint64
	for k0 := 0; k0 < cnt; k0 += len(hs) {
		k1 := min(cnt, k0+len(hs))
		for k := k0; k < k1; k++ {
			if b.tm != nil {
				i := b.idx[k]
				cand[k] = b.tm.pages[i/digestPage][i%digestPage]
			}
			h := x.hash(&cand[k])
			hs[k-k0] = h
			touch += x.table[x.slot(h)]
		}
		for k := k0; k < k1; k++ {
			if len(x.digests) >= maxGroups {
				return fmt.Errorf("blockdiff: diff: more than %d distinct changed blocks at block %d: use a larger block size", maxGroups, b.idx[k])
			}
			id := x.addHashed(&cand[k], hs[k-k0])
			if gid == nil {
				if int(id) == k {
					continue
				}
				gid = make([]uint32, cnt)
				for j := range k {
					gid[j] = uint32(j)
				}
			}
			gid[k] = id
		}
	}
	x.touched = touch
	u := len(x.digests)
	c.digests = x.digests
	if cap(c.digests) > 2*u { // many repeats: give back the candidates' memory
		c.digests = slices.Clone(c.digests)
	}
	c.Stats.Distinct = int64(u)
	first := b.idx // first[g] is group g's first index
	if gid == nil {
		c.byGroup = b.idx
	} else {
		// Count into off[g+1], sum into starts, place with off[g] as the
		// cursor (it ends at group g's end), then shift back to starts.
		c.off = make([]int64, u+1)
		for _, g := range gid {
			c.off[g+1]++
		}
		for g := range u {
			c.off[g+1] += c.off[g]
		}
		c.byGroup = make([]int64, cnt)
		for k, g := range gid {
			c.byGroup[c.off[g]] = b.idx[k]
			c.off[g]++
		}
		copy(c.off[1:], c.off[:u])
		c.off[0] = 0
		first = nil
	}
	// Every group's content is a full block except a short last block's.
	c.Stats.Bytes = int64(u) * int64(c.Geometry.BlockSize)
	if last := c.Geometry.Blocks() - 1; b.idx[cnt-1] == last {
		g := cnt - 1
		if gid != nil {
			g = int(gid[cnt-1])
		}
		f := int64(-1)
		if first != nil {
			f = first[g]
		} else {
			f = c.byGroup[c.off[g]]
		}
		if f == last {
			c.Stats.Bytes -= int64(c.Geometry.BlockSize - c.Geometry.BlockLen(last))
		}
	}
	b.idx, b.cand, b.tm = nil, nil, nil
	return nil
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
	ids := indexOf(c.digests)
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
