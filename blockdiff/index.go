package blockdiff

import (
	"encoding/binary"
	"hash/maphash"
)

// digestIndex maps digests to dense ids 0, 1, 2, ... in order of first
// insertion. The digests themselves live once in a slice; the table holds
// only 4-byte ids (open addressing, linear probing, at most half full), so
// it costs about 40 bytes per distinct digest instead of a Go map's ~80,
// and a lookup touches two cache lines. The hash is seeded per index, so
// crafted block contents cannot aim probe chains.
type digestIndex struct {
	seed    maphash.Seed
	table   []uint32 // 0: empty; otherwise id+1
	mask    uint64
	digests []Digest
}

func newDigestIndex() *digestIndex {
	x := &digestIndex{seed: maphash.MakeSeed()}
	x.resize(1 << 10)
	return x
}

func (x *digestIndex) hash(d *Digest) uint64 { return maphash.Bytes(x.seed, d[:]) }

func (x *digestIndex) resize(size int) {
	x.table = make([]uint32, size)
	x.mask = uint64(size - 1)
	for id := range x.digests {
		h := x.hash(&x.digests[id]) & x.mask
		for x.table[h] != 0 {
			h = (h + 1) & x.mask
		}
		x.table[h] = uint32(id) + 1
	}
}

// add returns d's id, giving it the next id if it is new.
func (x *digestIndex) add(d *Digest) uint32 {
	h := x.hash(d) & x.mask
	for {
		v := x.table[h]
		if v == 0 {
			break
		}
		if digestEq(&x.digests[v-1], d) {
			return v - 1
		}
		h = (h + 1) & x.mask
	}
	id := uint32(len(x.digests))
	x.digests = append(x.digests, *d)
	x.table[h] = id + 1
	if 2*len(x.digests) > len(x.table) {
		x.resize(2 * len(x.table))
	}
	return id
}

// lookup returns d's id and whether it is present.
func (x *digestIndex) lookup(d *Digest) (uint32, bool) {
	h := x.hash(d) & x.mask
	for {
		v := x.table[h]
		if v == 0 {
			return 0, false
		}
		if digestEq(&x.digests[v-1], d) {
			return v - 1, true
		}
		h = (h + 1) & x.mask
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
