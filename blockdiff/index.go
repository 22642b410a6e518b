package blockdiff

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// digestIndex maps digests to dense ids 0, 1, 2, ... in order of first
// insertion. The digests themselves live once in a slice; the table holds
// 8-byte slots (open addressing, linear probing, at most half full), each
// a 32-bit id and a 32-bit tag from the hash, so a probe that meets another
// digest almost never reads that digest: an insert or lookup usually
// touches one cache line of the table.
//
// The hash mixes all 32 bytes of the digest with four random 64-bit seeds
// drawn for each index (two 64x64→128-bit multiplies, as in wyhash). Block
// contents are chosen by whoever writes the volume, and a digest's low bits
// can be aimed by brute force, so an unseeded or merely XOR-seeded key
// (which keeps every collision) would let crafted blocks build long probe
// chains; with secret per-index seeds they cannot be aimed.
type digestIndex struct {
	seed    [4]uint64
	table   []uint64 // 0: empty; otherwise tag<<32 | id+1
	mask    uint64
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

// tableSize is the power of two that keeps n digests at most half full.
func tableSize(n int) int {
	return max(1<<10, 1<<bits.Len(uint(max(1, 2*n-1))))
}

func (x *digestIndex) hash(d *Digest) uint64 {
	h1, l1 := bits.Mul64(binary.LittleEndian.Uint64(d[0:])^x.seed[0], binary.LittleEndian.Uint64(d[8:])^x.seed[1])
	h2, l2 := bits.Mul64(binary.LittleEndian.Uint64(d[16:])^x.seed[2], binary.LittleEndian.Uint64(d[24:])^x.seed[3])
	return h1 ^ l1 ^ h2 ^ l2
}

func (x *digestIndex) resize(size int) {
	x.table = make([]uint64, size)
	x.mask = uint64(size - 1)
	for id := range x.digests {
		h := x.hash(&x.digests[id])
		s := h & x.mask
		for x.table[s] != 0 {
			s = (s + 1) & x.mask
		}
		x.table[s] = h>>32<<32 | uint64(id) + 1
	}
}

// add returns d's id, giving it the next id if it is new (d is then
// appended to x.digests; d may point into x.digests' spare capacity at or
// past its length).
func (x *digestIndex) add(d *Digest) uint32 { return x.addHashed(d, x.hash(d)) }

// addHashed is add with d's hash h already computed.
func (x *digestIndex) addHashed(d *Digest, h uint64) uint32 {
	tag := h >> 32 << 32
	s := h & x.mask
	for {
		v := x.table[s]
		if v == 0 {
			break
		}
		if v&^0xffffffff == tag && digestEq(&x.digests[uint32(v)-1], d) {
			return uint32(v) - 1
		}
		s = (s + 1) & x.mask
	}
	id := uint32(len(x.digests))
	x.digests = append(x.digests, *d)
	x.table[s] = tag | uint64(id) + 1
	if 2*len(x.digests) > len(x.table) {
		x.resize(2 * len(x.table))
	}
	return id
}

// lookup returns d's id and whether it is present.
func (x *digestIndex) lookup(d *Digest) (uint32, bool) {
	h := x.hash(d)
	tag := h >> 32 << 32
	s := h & x.mask
	for {
		v := x.table[s]
		if v == 0 {
			return 0, false
		}
		if v&^0xffffffff == tag && digestEq(&x.digests[uint32(v)-1], d) {
			return uint32(v) - 1, true
		}
		s = (s + 1) & x.mask
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
