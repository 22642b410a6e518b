package blockdiff

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// digestIndex maps digests to dense ids 0, 1, 2, ... in order of first
// insertion. The digests themselves live once in a slice; the table holds
// 8-byte slots (open addressing, linear probing, at most 5/8 full), each a
// 32-bit id and a 32-bit tag from the hash, so a probe that meets another
// digest almost never reads that digest: an insert or lookup usually
// touches one cache line of the table. The table's size is not a power of
// two but just what 5/8 full needs (the hash is mapped onto it with a
// multiply), so it costs 13 to 16 bytes per digest.
//
// The hash mixes all 32 bytes of the digest with four random 64-bit seeds
// drawn for each index (two 64x64→128-bit multiplies, folded by a third,
// as in wyhash). Block
// contents are chosen by whoever writes the volume, and a digest's low bits
// can be aimed by brute force, so an unseeded or merely XOR-seeded key
// (which keeps every collision) would let crafted blocks build long probe
// chains; with secret per-index seeds they cannot be aimed.
type digestIndex struct {
	seed    [4]uint64
	table   []uint64 // 0: empty; otherwise tag<<32 | id+1
	digests []Digest
	touched uint64 // sum of slots loaded ahead of inserts, kept so the loads stay
}

// newDigestIndex returns an index sized to hold n digests without growing.
func newDigestIndex(n int) *digestIndex {
	x := &digestIndex{seed: [4]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}}
	x.resize(tableSize(n))
	return x
}

// indexOf returns an index over ds, whose ids are their positions.
func indexOf(ds []Digest) *digestIndex {
	x := newDigestIndex(0)
	x.digests = ds
	x.resize(tableSize(len(ds)))
	return x
}

// tableSize is the table size that keeps n digests at most 5/8 full.
func tableSize(n int) int { return max(1<<10, n/5*8+8) }

func (x *digestIndex) hash(d *Digest) uint64 {
	h1, l1 := bits.Mul64(binary.LittleEndian.Uint64(d[0:])^x.seed[0], binary.LittleEndian.Uint64(d[8:])^x.seed[1])
	h2, l2 := bits.Mul64(binary.LittleEndian.Uint64(d[16:])^x.seed[2], binary.LittleEndian.Uint64(d[24:])^x.seed[3])
	// A final multiply spreads every input bit over the high bits that slot
	// uses: without it, digests differing only in a word's top bytes change
	// lo's high bits and hi only linearly, and cluster (seen as probe runs
	// of 1000+ slots in TestDigestIndexStructuredDigests).
	h, l := bits.Mul64(h1^l1^0x9e3779b97f4a7c15, h2^l2^0xbf58476d1ce4e5b9)
	return h ^ l
}

// slot maps hash h onto the table, uniformly for any table size.
func (x *digestIndex) slot(h uint64) uint64 {
	s, _ := bits.Mul64(h, uint64(len(x.table)))
	return s
}

// tagOf is the part of h kept in a slot beside the id: the low bits, as
// slot uses the high ones.
func tagOf(h uint64) uint64 { return h << 32 }

func (x *digestIndex) resize(size int) {
	x.table = make([]uint64, size)
	for id := range x.digests {
		h := x.hash(&x.digests[id])
		s := x.slot(h)
		for x.table[s] != 0 {
			if s++; s == uint64(len(x.table)) {
				s = 0
			}
		}
		x.table[s] = tagOf(h) | uint64(id) + 1
	}
}

// add returns d's id, giving it the next id if it is new (d is then
// appended to x.digests; d may point into x.digests' spare capacity at or
// past its length).
func (x *digestIndex) add(d *Digest) uint32 { return x.addHashed(d, x.hash(d)) }

// addHashed is add with d's hash h already computed.
func (x *digestIndex) addHashed(d *Digest, h uint64) uint32 {
	tag := tagOf(h)
	s := x.slot(h)
	for {
		v := x.table[s]
		if v == 0 {
			break
		}
		if v&^0xffffffff == tag && digestEq(&x.digests[uint32(v)-1], d) {
			return uint32(v) - 1
		}
		if s++; s == uint64(len(x.table)) {
			s = 0
		}
	}
	id := uint32(len(x.digests))
	x.digests = append(x.digests, *d)
	x.table[s] = tag | uint64(id) + 1
	if 8*len(x.digests) > 5*len(x.table) {
		x.resize(2 * len(x.table))
	}
	return id
}

// lookup returns d's id and whether it is present.
func (x *digestIndex) lookup(d *Digest) (uint32, bool) {
	h := x.hash(d)
	tag := tagOf(h)
	s := x.slot(h)
	for {
		v := x.table[s]
		if v == 0 {
			return 0, false
		}
		if v&^0xffffffff == tag && digestEq(&x.digests[uint32(v)-1], d) {
			return uint32(v) - 1, true
		}
		if s++; s == uint64(len(x.table)) {
			s = 0
		}
	}
}

// digestEq reports whether a and b are equal. It compiles to four 8-byte
// compares, where == on a 32-byte array calls runtime.memequal.
func digestEq(a, b *Digest) bool {
	return binary.LittleEndian.Uint64(a[0:]) == binary.LittleEndian.Uint64(b[0:]) &&
		binary.LittleEndian.Uint64(a[8:]) == binary.LittleEndian.Uint64(b[8:]) &&
		binary.LittleEndian.Uint64(a[16:]) == binary.LittleEndian.Uint64(b[16:]) &&
		binary.LittleEndian.Uint64(a[24:]) == binary.LittleEndian.Uint64(b[24:])
}
