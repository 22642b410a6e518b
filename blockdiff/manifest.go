package blockdiff

import (
	"fmt"
	"io"
	"slices"

	"github.com/blockferry/blockferry/hashing"
)

// Entry is one block of a manifest. Digest is always the SHA-256 of the
// block's bytes: for Zero and Hole blocks it is the zero-block digest of the
// block's length ([hashing.ZeroDigest]).
type Entry struct {
	Index  int64
	Kind   Kind
	Digest Digest
}

// Iterator walks the entries of a manifest in ascending index order, one per
// block from 0 to Geometry().Blocks()-1. Next returns io.EOF after the last
// entry; any other error is final and returned again on every later call.
type Iterator interface {
	Geometry() Geometry
	Next() (Entry, error)
}

// digestPage is how many digests one lazily allocated page holds.
const digestPage = 4096

// Manifest is a volume's geometry plus one [Entry] per block, held in
// memory compactly: one byte per block for its kind, and digests only in
// pages that hold a data block, so a sparse 1 TiB volume costs a few MiB.
// For volumes whose digest list should not sit in memory whole, stream with
// [Writer], [Reader] and [Diff] over iterators instead.
//
// Origin optionally names what the manifest describes, such as the source a
// target was copied from ("ebs:snap-…", "cas:DIR#name"), so that a later run
// can ask that source for its changes since.
//
// A Manifest is safe for concurrent Set calls on different indices and for
// concurrent reads, but not for reads concurrent with Set on the same index.
type Manifest struct {
	Origin string

	geom  Geometry
	kinds []Kind
	pages [][]Digest

	zeroFull, zeroLast Digest // zero-block digests of a full and of the last block
}

// NewManifest returns a manifest of geometry g in which every block is a hole.
func NewManifest(g Geometry) (*Manifest, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	n := g.Blocks()
	kinds := make([]Kind, n)
	for i := range kinds {
		kinds[i] = Hole
	}
	m := &Manifest{
		geom:  g,
		kinds: kinds,
		pages: make([][]Digest, (n+digestPage-1)/digestPage),
	}
	m.initZero()
	return m, nil
}

func (m *Manifest) initZero() {
	m.zeroFull = hashing.ZeroDigest(m.geom.BlockSize)
	m.zeroLast = hashing.ZeroDigest(m.geom.BlockLen(m.geom.Blocks() - 1))
}

// zeroDigest returns the digest of zero block i.
func (m *Manifest) zeroDigest(i int64) Digest {
	if i == int64(len(m.kinds))-1 {
		return m.zeroLast
	}
	return m.zeroFull
}

// growRun appends count blocks of kind k, with digs holding their digests
// back to back for Data. It is the decoder's growth path: memory follows
// the entries actually decoded, never a count from a header.
func (m *Manifest) growRun(k Kind, count int64, digs []byte) {
	i := int64(len(m.kinds))
	m.kinds = slices.Grow(m.kinds, int(count))
	for range count {
		m.kinds = append(m.kinds, k)
	}
	for need := (int64(len(m.kinds)) + digestPage - 1) / digestPage; int64(len(m.pages)) < need; {
		m.pages = append(m.pages, nil)
	}
	if k != Data {
		return
	}
	for ; len(digs) > 0; i++ {
		p := &m.pages[i/digestPage]
		if *p == nil {
			*p = make([]Digest, digestPage)
		}
		(*p)[i%digestPage] = Digest(digs[:DigestSize])
		digs = digs[DigestSize:]
	}
}

// Geometry returns the manifest's geometry.
func (m *Manifest) Geometry() Geometry { return m.geom }

// Len returns the number of blocks.
func (m *Manifest) Len() int64 { return int64(len(m.kinds)) }

// Set records block i as kind k with digest d (d is ignored for Zero and
// Hole). It returns an error wrapping [ErrOutOfRange] for a bad index.
// Concurrent calls are safe only for indices in different 4096-block pages
// or after the page was allocated; the parallel hasher serialises page
// allocation itself.
func (m *Manifest) Set(i int64, k Kind, d Digest) error {
	if i < 0 || i >= int64(len(m.kinds)) {
		return fmt.Errorf("blockdiff: set block %d of %d: %w", i, len(m.kinds), ErrOutOfRange)
	}
	if k > Hole {
		return fmt.Errorf("blockdiff: set block %d: invalid kind %d: %w", i, k, ErrCorrupt)
	}
	m.kinds[i] = k
	if k == Data {
		p := &m.pages[i/digestPage]
		if *p == nil {
			*p = make([]Digest, digestPage)
		}
		(*p)[i%digestPage] = d
	}
	return nil
}

// Kind returns the kind of block i. It panics if i is out of range, like a
// slice index.
func (m *Manifest) Kind(i int64) Kind { return m.kinds[i] }

// Entry returns block i. It panics if i is out of range, like a slice index.
func (m *Manifest) Entry(i int64) Entry {
	k := m.kinds[i]
	if k == Data {
		return Entry{Index: i, Kind: k, Digest: m.pages[i/digestPage][i%digestPage]}
	}
	return Entry{Index: i, Kind: k, Digest: m.zeroDigest(i)}
}

// Counts returns how many blocks are data, zero and holes.
func (m *Manifest) Counts() (data, zero, hole int64) {
	for _, k := range m.kinds {
		switch k {
		case Data:
			data++
		case Zero:
			zero++
		default:
			hole++
		}
	}
	return
}

// Iter returns an [Iterator] over the manifest's entries.
func (m *Manifest) Iter() Iterator { return &manifestIter{m: m} }

type manifestIter struct {
	m *Manifest
	i int64
}

func (it *manifestIter) Geometry() Geometry { return it.m.geom }

func (it *manifestIter) Next() (Entry, error) {
	if it.i >= it.m.Len() {
		return Entry{}, io.EOF
	}
	e := it.m.Entry(it.i)
	it.i++
	return e, nil
}

// Equal reports whether m and o have the same geometry and the same content
// in every block. Zero and Hole blocks count as equal content.
func (m *Manifest) Equal(o *Manifest) bool {
	if m.geom != o.geom {
		return false
	}
	for i := range m.kinds {
		a, b := m.Entry(int64(i)), o.Entry(int64(i))
		if a.Digest != b.Digest {
			return false
		}
	}
	return true
}
