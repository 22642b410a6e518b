package blockdiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// bruteDiff is an independent, obvious implementation of Diff over two
// in-memory manifests: it returns the stats, the groups (digest → indices,
// ordered by first index) and the per-block "must zero" list.
type bruteResult struct {
	stats  DiffStats
	groups []Group
	zero   []int64
}

func bruteDiff(base, target *Manifest) bruteResult {
	var r bruteResult
	n := target.Len()
	r.stats.Blocks = n
	pos := map[Digest]int{}
	for i := range n {
		t := target.Entry(i)
		b := Entry{Kind: Hole}
		if i < base.Len() {
			b = base.Entry(i)
		}
		switch t.Kind {
		case Zero:
			r.stats.Zeros++
		case Hole:
			r.stats.Holes++
		}
		tz, bz := t.Kind != Data, b.Kind != Data
		switch {
		case tz && bz, !tz && !bz && t.Digest == b.Digest:
			r.stats.Unchanged++
		case tz:
			r.stats.Zeroed++
			r.zero = append(r.zero, i)
		default:
			r.stats.Changed++
			p, ok := pos[t.Digest]
			if !ok {
				p = len(r.groups)
				pos[t.Digest] = p
				r.groups = append(r.groups, Group{Digest: t.Digest, Len: target.Geometry().BlockLen(i), Local: -1})
				r.stats.Distinct++
				r.stats.Bytes += int64(target.Geometry().BlockLen(i))
			}
			r.groups[p].Indices = append(r.groups[p].Indices, i)
		}
	}
	return r
}

// checkChangeSet compares c with the brute-force result.
func checkChangeSet(t *testing.T, c *ChangeSet, want bruteResult) {
	t.Helper()
	if c.Stats != want.stats {
		t.Fatalf("stats:\n got %+v\nwant %+v", c.Stats, want.stats)
	}
	if s := c.Stats; s.Blocks != s.Unchanged+s.Changed+s.Zeroed {
		t.Fatalf("stats do not add up: %+v", s)
	}
	if got := c.Len(); got != want.stats.Changed+want.stats.Zeroed {
		t.Fatalf("Len: got %d, want %d", got, want.stats.Changed+want.stats.Zeroed)
	}
	var k int
	err := c.Groups(func(g Group) error {
		if k >= len(want.groups) {
			t.Fatalf("more groups than the %d wanted", len(want.groups))
		}
		w := want.groups[k]
		if g.Digest != w.Digest || g.Len != w.Len || !slices.Equal(g.Indices, w.Indices) {
			t.Fatalf("group %d: got %x len %d %v, want %x len %d %v", k, g.Digest[:4], g.Len, g.Indices, w.Digest[:4], w.Len, w.Indices)
		}
		k++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if k != len(want.groups) {
		t.Fatalf("groups: got %d, want %d", k, len(want.groups))
	}
	var zero []int64
	last := int64(-1)
	c.ZeroRuns(func(e Extent) error {
		if e.Count <= 0 || e.First <= last {
			t.Fatalf("zero run %+v is empty, overlapping or out of order", e)
		}
		last = e.End() - 1
		for i := e.First; i < e.End(); i++ {
			zero = append(zero, i)
		}
		return nil
	})
	if !slices.Equal(zero, want.zero) {
		t.Fatalf("zero runs cover %d blocks %v, want %d blocks", len(zero), zero[:min(10, len(zero))], len(want.zero))
	}
}

// mutate returns a copy of m resized to size, with some blocks changed to
// fresh data, copies of other blocks, zeros or holes.
func mutate(t *testing.T, rng *rand.Rand, m *Manifest, size int64, rate float64) *Manifest {
	t.Helper()
	out, err := NewManifest(Geometry{Size: size, BlockSize: m.Geometry().BlockSize})
	if err != nil {
		t.Fatal(err)
	}
	n := out.Len()
	for i := range n {
		var e Entry
		if i < m.Len() {
			e = m.Entry(i)
		} else {
			e = Entry{Kind: Kind(rng.IntN(3))}
			fillDigest(rng, &e.Digest)
		}
		if rng.Float64() < rate {
			switch rng.IntN(4) {
			case 0:
				e.Kind = Data
				fillDigest(rng, &e.Digest)
			case 1: // the content of another block (dedupe and FindLocal material)
				e = m.Entry(rng.Int64N(m.Len()))
			case 2:
				e.Kind = Zero
			case 3:
				e.Kind = Hole
			}
		}
		if i == n-1 && size%int64(m.Geometry().BlockSize) != 0 && e.Kind == Data {
			fillDigest(rng, &e.Digest) // a short block cannot share a full block's content
		}
		if err := out.Set(i, e.Kind, e.Digest); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readerOf returns a streaming Reader over m's encoding.
func readerOf(t *testing.T, m *Manifest) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(encode(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiffAgainstBruteForce(t *testing.T) {
	const bs = 4096
	rng := rand.New(rand.NewPCG(7, 8))
	tests := []struct {
		name              string
		baseSize, tgtSize int64
		rate              float64
		pool              int
	}{
		{"same size", 3000 * bs, 3000 * bs, 0.1, 50},
		{"identical", 3000 * bs, 3000 * bs, 0, 0},
		{"all changed", 500 * bs, 500 * bs, 1, 0},
		{"target grew", 1000 * bs, 1500*bs + 17, 0.05, 20},
		{"target shrank", 1500*bs + 17, 1000 * bs, 0.05, 20},
		{"to empty", 100 * bs, 0, 0.1, 0},
		{"from empty", 0, 100 * bs, 0.1, 0},
		{"short blocks both", 999*bs + 1, 999*bs + 2, 0.2, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range 5 {
				g := Geometry{Size: tt.baseSize, BlockSize: bs}
				base := randomManifest(t, rng, g, 5, 1, 2, tt.pool)
				src := base
				if base.Len() == 0 { // mutate needs blocks to copy from
					src = randomManifest(t, rng, Geometry{Size: 10 * bs, BlockSize: bs}, 1, 1, 1, 0)
				}
				target := mutate(t, rng, src, tt.tgtSize, tt.rate)
				want := bruteDiff(base, target)

				c, err := Diff(base.Iter(), target.Iter())
				if err != nil {
					t.Fatalf("seed %d: in-memory Diff: %v", seed, err)
				}
				checkChangeSet(t, c, want)

				cs, err := Diff(readerOf(t, base), readerOf(t, target))
				if err != nil {
					t.Fatalf("seed %d: streaming Diff: %v", seed, err)
				}
				checkChangeSet(t, cs, want)

				// Mixed: in-memory base, streaming target.
				cm, err := Diff(base.Iter(), readerOf(t, target))
				if err != nil {
					t.Fatal(err)
				}
				checkChangeSet(t, cm, want)

				// Opaque iterators take the entry-by-entry path.
				co, err := Diff(opaque{readerOf(t, base)}, opaque{target.Iter()})
				if err != nil {
					t.Fatal(err)
				}
				checkChangeSet(t, co, want)
			}
		})
	}
}

func TestFindLocal(t *testing.T) {
	const bs = 4096
	rng := rand.New(rand.NewPCG(9, 10))
	for seed := range 10 {
		base := randomManifest(t, rng, Geometry{Size: 2000 * bs, BlockSize: bs}, 5, 1, 1, 40)
		target := mutate(t, rng, base, int64(1500+rng.IntN(1000))*bs, 0.2)
		c, err := Diff(base.Iter(), target.Iter())
		if err != nil {
			t.Fatal(err)
		}
		c.Groups(func(g Group) error {
			if g.Local != -1 {
				t.Fatalf("Local before FindLocal: got %d, want -1", g.Local)
			}
			return nil
		})
		if err := c.FindLocal(readerOf(t, base)); err != nil {
			t.Fatal(err)
		}
		want := bruteDiff(base, target)
		touched := map[int64]bool{}
		for _, g := range want.groups {
			for _, i := range g.Indices {
				touched[i] = true
			}
		}
		for _, i := range want.zero {
			touched[i] = true
		}
		var found int
		c.Groups(func(g Group) error {
			// Brute force: the first unchanged index holding g.Digest.
			wantLocal := int64(-1)
			for i := range min(base.Len(), target.Len()) {
				if !touched[i] && base.Entry(i).Kind == Data && base.Entry(i).Digest == g.Digest {
					wantLocal = i
					break
				}
			}
			if g.Local != wantLocal {
				t.Fatalf("seed %d: group %x Local: got %d, want %d", seed, g.Digest[:4], g.Local, wantLocal)
			}
			if g.Local >= 0 {
				found++
				if te := target.Entry(g.Local); te.Kind != Data || te.Digest != g.Digest {
					t.Fatalf("Local %d does not hold the digest in the target", g.Local)
				}
			}
			return nil
		})
		if seed == 0 && found == 0 {
			t.Fatalf("seed %d: no group found a local copy; the test does not exercise FindLocal", seed)
		}
	}
}

func TestDiffErrors(t *testing.T) {
	a, _ := NewManifest(Geometry{Size: 1 << 20, BlockSize: 4096})
	b, _ := NewManifest(Geometry{Size: 1 << 20, BlockSize: 8192})
	if _, err := Diff(a.Iter(), b.Iter()); !errors.Is(err, ErrGeometry) {
		t.Fatalf("block size mismatch: got %v, want ErrGeometry", err)
	}
	c, err := Diff(a.Iter(), a.Iter())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.FindLocal(b.Iter()); !errors.Is(err, ErrGeometry) {
		t.Fatalf("FindLocal with another base: got %v, want ErrGeometry", err)
	}

	// A corrupt streaming base is reported even past the target's end.
	big := randomManifest(t, rand.New(rand.NewPCG(1, 1)), Geometry{Size: 20000 * 4096, BlockSize: 4096}, 1, 0, 0, 0)
	small, _ := NewManifest(Geometry{Size: 10 * 4096, BlockSize: 4096})
	enc := encode(t, big)
	enc[len(enc)-1] ^= 1
	r, err := NewReader(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Diff(r, small.Iter()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt base: got %v, want ErrCorrupt", err)
	}

	// Iterators that misbehave.
	tests := []struct {
		name string
		it   Iterator
	}{
		{"ends early", &sliceIter{g: a.Geometry(), ents: []Entry{{Index: 0, Kind: Hole}}}},
		{"skips", &sliceIter{g: a.Geometry(), ents: []Entry{{Index: 0, Kind: Hole}, {Index: 2, Kind: Hole}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Diff(a.Iter(), tt.it); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
	failing := &sliceIter{g: a.Geometry(), err: errDiskFull}
	if _, err := Diff(failing, a.Iter()); !errors.Is(err, errDiskFull) {
		t.Fatalf("failing base: got %v, want its error wrapped", err)
	}
}

type sliceIter struct {
	g    Geometry
	ents []Entry
	err  error
}

func (s *sliceIter) Geometry() Geometry { return s.g }
func (s *sliceIter) Next() (Entry, error) {
	if s.err != nil {
		return Entry{}, s.err
	}
	if len(s.ents) == 0 {
		return Entry{}, io.EOF
	}
	e := s.ents[0]
	s.ents = s.ents[1:]
	return e, nil
}

func TestDigestIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := newDigestIndex(0) // grows from its smallest table
	want := map[Digest]uint32{}
	var order []Digest
	for range 100000 {
		var d Digest
		if len(order) > 0 && rng.IntN(3) == 0 {
			d = order[rng.IntN(len(order))]
		} else {
			fillDigest(rng, &d)
		}
		id := x.add(&d)
		w, ok := want[d]
		if !ok {
			w = uint32(len(order))
			want[d] = w
			order = append(order, d)
		}
		if id != w {
			t.Fatalf("add %x: got id %d, want %d", d[:4], id, w)
		}
	}
	for d, w := range want {
		if id, ok := x.lookup(&d); !ok || id != w {
			t.Fatalf("lookup %x: got %d %v, want %d true", d[:4], id, ok, w)
		}
	}
	var missing Digest
	fillDigest(rng, &missing)
	if _, ok := x.lookup(&missing); ok {
		t.Fatal("lookup of an absent digest succeeded")
	}
	if !slices.Equal(x.digests, order) {
		t.Fatal("digests are not in order of first insertion")
	}
}

// cloneManifest returns a deep copy of m, stale digests (left in a page by a
// block set to Zero or Hole) included.
func cloneManifest(m *Manifest, size int64) *Manifest {
	c, _ := NewManifest(Geometry{Size: size, BlockSize: m.geom.BlockSize})
	copy(c.kinds, m.kinds)
	for p := range min(len(c.pages), len(m.pages)) {
		if m.pages[p] != nil {
			c.pages[p] = slices.Clone(m.pages[p])
		}
	}
	return c
}

// TestDiffManifestPages aims at the in-memory path's shortcuts: pages and
// spans that are byte for byte equal are skipped, pages that differ are
// walked, at page and span edges, with shared pages, pages without data,
// stale digests and a base that ends inside a page.
func TestDiffManifestPages(t *testing.T) {
	const bs = 4096
	const n = 3*digestPage + 1500
	rng := rand.New(rand.NewPCG(21, 22))
	orig := randomManifest(t, rng, Geometry{Size: n * bs, BlockSize: bs}, 20, 1, 1, 0)
	// A page with no data on either side, one allocated but holding none.
	for i := int64(digestPage); i < 2*digestPage; i++ {
		orig.kinds[i] = Hole
	}
	orig.pages[1] = nil
	var d Digest
	fillDigest(rng, &d)
	setData := func(m *Manifest, i int64, d Digest) { m.Set(i, Data, d) }
	tests := []struct {
		name     string
		baseSize int64 // blocks; target has n
		mutate   func(base, target *Manifest)
	}{
		{"identical", n, func(_, _ *Manifest) {}},
		{"shared pages", n, func(b, t *Manifest) { copy(t.pages, b.pages) }},
		{"one block at each span and page edge", n, func(_, t *Manifest) {
			for _, i := range []int64{0, diffSpan - 1, diffSpan, 2*diffSpan - 1, digestPage - 1, 2 * digestPage, 3*digestPage - 1, 3 * digestPage, n - 1} {
				var d Digest
				fillDigest(rng, &d)
				setData(t, i, d)
			}
		}},
		{"one changed span", n, func(_, t *Manifest) {
			for i := int64(2*digestPage + 5*diffSpan); i < 2*digestPage+6*diffSpan; i++ {
				setData(t, i, d) // all the same content: one group
			}
		}},
		{"kinds differ, digests equal", n, func(_, t *Manifest) {
			t.Set(10, Zero, Digest{})
			t.Set(11, Hole, Digest{})
			t.Set(3*digestPage+7, Zero, Digest{})
		}},
		{"zero and hole swapped", n, func(b, t *Manifest) {
			for i := range t.kinds {
				switch t.kinds[i] {
				case Zero:
					t.kinds[i] = Hole
				case Hole:
					t.kinds[i] = Zero
				}
			}
		}},
		{"stale digests under zero blocks", n, func(b, t *Manifest) {
			for i := int64(0); i < n; i += 97 {
				b.Set(i, Zero, Digest{})
				var d Digest
				fillDigest(rng, &d)
				t.Set(i, Data, d)
				t.Set(i, Zero, Digest{}) // the page keeps d
			}
		}},
		{"data page in target only", n, func(_, t *Manifest) {
			setData(t, digestPage+100, d)
			t.Set(digestPage+100, Hole, Digest{}) // page allocated, no data left
			setData(t, digestPage+200, d)
		}},
		{"base ends inside a page", 2*digestPage + 700, func(_, t *Manifest) { setData(t, 2*digestPage+699, d) }},
		{"base ends at a page end", 2 * digestPage, func(_, _ *Manifest) {}},
		{"base longer", n + 5000, func(_, t *Manifest) { setData(t, 5, d) }},
		{"empty base", 0, func(_, _ *Manifest) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := cloneManifest(orig, tt.baseSize*bs)
			if tt.baseSize > n { // fill the blocks past orig's end
				for i := int64(n); i < tt.baseSize; i++ {
					var d Digest
					fillDigest(rng, &d)
					setData(base, i, d)
				}
			}
			target := cloneManifest(orig, n*bs)
			tt.mutate(base, target)
			want := bruteDiff(base, target)
			c, err := Diff(base.Iter(), target.Iter())
			if err != nil {
				t.Fatal(err)
			}
			checkChangeSet(t, c, want)
			cs, err := Diff(readerOf(t, base), readerOf(t, target))
			if err != nil {
				t.Fatal(err)
			}
			checkChangeSet(t, cs, want)
		})
	}
}

// TestDigestIndexStructuredDigests inserts digests that differ only in
// their last bytes (not SHA-256 output, but a Manifest accepts any
// digest): the hash must use every byte, so probe runs stay short.
func TestDigestIndexStructuredDigests(t *testing.T) {
	for _, at := range []int{0, 8, 16, 24} {
		x := newDigestIndex(1 << 16)
		for v := range 1 << 16 {
			var d Digest
			binary.BigEndian.PutUint16(d[at+6:], uint16(v))
			if id := x.add(&d); id != uint32(v) {
				t.Fatalf("bytes %d..%d: add %d: got id %d, want %d", at+6, at+7, v, id, v)
			}
		}
		worst := 0
		for id := range x.digests {
			s, probes := x.slot(x.hash(&x.digests[id])), 0
			for uint32(x.table[s])-1 != uint32(id) {
				if s++; s == uint64(len(x.table)) {
					s = 0
				}
				probes++
			}
			worst = max(worst, probes)
		}
		if worst > 200 {
			t.Errorf("digests varying in bytes %d..%d: longest probe run %d slots, want at most 200 (the hash ignores those bytes?)", at+6, at+7, worst)
		}
	}
}
