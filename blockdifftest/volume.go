package blockdifftest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/blockferry/blockferry/blockdiff"
)

// Block generation is a pure function of (seed, index), so Volume and
// WriteVolume agree byte for byte, any block can be produced alone, and the
// same seed gives the same volume on every machine and Go version (ChaCha8
// and PCG streams are specified).

// blockPlan says what block i of a generated volume holds: zero, or the
// random content of block origin (origin == i for fresh content, < i for a
// duplicate).
func blockPlan(seed int64, i int64, zeroFrac, dupFrac float64) (zero bool, origin int64) {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
	u := r.Float64()
	switch {
	case u < zeroFrac:
		return true, 0
	case u < zeroFrac+dupFrac && i > 0:
		j := r.Int64N(i)
		// A duplicate of a duplicate resolves to its origin; a duplicate
		// of a zero block is fresh data instead, so that zeroFrac holds.
		if z, o := blockPlan(seed, j, zeroFrac, dupFrac); !z {
			return false, o
		}
	}
	return false, i
}

// fillBlock fills b with the random content of block origin under seed.
func fillBlock(b []byte, seed, origin int64, salt uint64) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], uint64(seed))
	binary.LittleEndian.PutUint64(key[8:], uint64(origin))
	binary.LittleEndian.PutUint64(key[16:], salt)
	key[24] = 0xbf // distinguishes these streams from any other use of the seed
	c := rand.NewChaCha8(key)
	c.Read(b)
	// A random block is all zeros with negligible probability, but make
	// sure: a data block must hold data.
	if len(b) > 0 && isZero(b) {
		b[0] = 1
	}
}

// Volume returns a deterministic volume of geometry g: each block is, with
// probability zeroFrac, all zeros; else with probability dupFrac a copy of
// an earlier data block (the last short block copies a prefix; when the
// earlier block drawn is zero, fresh bytes instead); else fresh random
// bytes. The same seed and arguments always give the same bytes. It
// panics if g is invalid or the fractions are outside [0, 1], which is a bug
// in the calling test.
func Volume(seed int64, g blockdiff.Geometry, zeroFrac, dupFrac float64) []byte {
	checkVolumeArgs(g, zeroFrac, dupFrac)
	v := make([]byte, g.Size)
	scratch := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		genBlock(v[g.Offset(i):g.Offset(i)+int64(g.BlockLen(i))], scratch, seed, i, zeroFrac, dupFrac)
	}
	return v
}

// genBlock writes block i into dst (len(dst) == BlockLen(i)) and reports
// whether it is zero. scratch is a full block of working space.
func genBlock(dst, scratch []byte, seed, i int64, zeroFrac, dupFrac float64) (zero bool) {
	zero, origin := blockPlan(seed, i, zeroFrac, dupFrac)
	if zero {
		clear(dst)
		return true
	}
	if len(dst) == len(scratch) {
		fillBlock(dst, seed, origin, 0)
		return false
	}
	// A short last block: the prefix of its origin's full content.
	fillBlock(scratch, seed, origin, 0)
	copy(dst, scratch)
	if isZero(dst) {
		dst[0] = 1
	}
	return false
}

// WriteVolume writes the volume [Volume] would return to w, one block per
// WriteAt call, skipping zero blocks: into a fresh (or freshly truncated)
// sparse file they stay holes, so multi-GiB images cost only their data.
// The caller sizes the file (for example with os.File.Truncate(g.Size)),
// since a volume ending in zero blocks writes nothing there. Memory use is
// two blocks.
func WriteVolume(w io.WriterAt, seed int64, g blockdiff.Geometry, zeroFrac, dupFrac float64) error {
	checkVolumeArgs(g, zeroFrac, dupFrac)
	buf := make([]byte, g.BlockSize)
	scratch := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		b := buf[:g.BlockLen(i)]
		if genBlock(b, scratch, seed, i, zeroFrac, dupFrac) {
			continue
		}
		if _, err := w.WriteAt(b, g.Offset(i)); err != nil {
			return fmt.Errorf("blockdifftest: write volume block %d: %w", i, err)
		}
	}
	return nil
}

// Mutate returns a copy of vol, a volume of blockSize blocks, in which each
// block is rewritten with probability changedFrac, deterministically from
// seed: a rewritten block gets fresh random bytes, or (one time in eight)
// becomes all zeros. Use it to make the v2 of a v1 from [Volume].
func Mutate(vol []byte, seed int64, blockSize int, changedFrac float64) []byte {
	out := make([]byte, len(vol))
	copy(out, vol)
	g := blockdiff.Geometry{Size: int64(len(vol)), BlockSize: blockSize}
	if _, err := MutateAt(sliceWriter(out), seed, g, changedFrac); err != nil {
		panic(err) // a slice write cannot fail
	}
	return out
}

// MutateAt applies the changes [Mutate] would make to the volume of
// geometry g behind w, writing only the changed blocks (zero-block changes
// are written as zeros), and returns how many blocks it changed. Use it on a
// copy of a [WriteVolume] image for multi-GiB v1/v2 pairs.
func MutateAt(w io.WriterAt, seed int64, g blockdiff.Geometry, changedFrac float64) (changed int64, err error) {
	checkVolumeArgs(g, changedFrac, 0)
	buf := make([]byte, g.BlockSize)
	for i := range g.Blocks() {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(i)^0x9e3779b97f4a7c15))
		if r.Float64() >= changedFrac {
			continue
		}
		b := buf[:g.BlockLen(i)]
		if r.IntN(8) == 0 {
			clear(b)
		} else {
			fillBlock(b, seed, i, 1)
		}
		if _, err := w.WriteAt(b, g.Offset(i)); err != nil {
			return changed, fmt.Errorf("blockdifftest: mutate block %d: %w", i, err)
		}
		changed++
	}
	return changed, nil
}

type sliceWriter []byte

func (s sliceWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s)) {
		return 0, fmt.Errorf("blockdifftest: write of %d bytes at %d past %d", len(p), off, len(s))
	}
	return copy(s[off:], p), nil
}

func checkVolumeArgs(g blockdiff.Geometry, a, b float64) {
	if err := g.Validate(); err != nil {
		panic(fmt.Sprintf("blockdifftest: %v", err))
	}
	if a < 0 || a > 1 || b < 0 || b > 1 || a+b > 1 {
		panic(fmt.Sprintf("blockdifftest: fractions %v and %v must be in [0, 1] and sum to at most 1", a, b))
	}
}
