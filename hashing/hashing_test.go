package hashing_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/blockferry/blockferry/hashing"
)

// lengths covers the padding edge cases: empty, one byte, the largest and
// smallest one-block tails (55, 56), one block and its neighbours, two-block
// tails, and the block sizes in use with short variants.
var lengths = []int{0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000,
	4095, 4096, 4097, 8191, 8192, 8193, 65536 - 9, 65536, 100000, 512 << 10, 512<<10 + 13}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestEnginesListStdlibFirst(t *testing.T) {
	es := hashing.Engines()
	if len(es) == 0 || es[0] != hashing.Stdlib {
		t.Fatalf("Engines() = %v, want Stdlib first", es)
	}
	single, batch := hashing.Default()
	for _, e := range []hashing.Engine{single, batch} {
		if !e.Available() {
			t.Errorf("default engine %v is not available", e)
		}
	}
	t.Logf("engines on this CPU: %v; default single %v, batch %v", es, single, batch)
}

func TestSum256(t *testing.T) {
	for _, e := range hashing.Engines() {
		for _, n := range lengths {
			t.Run(fmt.Sprintf("%v/%d", e, n), func(t *testing.T) {
				data := randBytes(uint64(n), n)
				want := sha256.Sum256(data)
				if got := e.Sum256(data); got != want {
					t.Errorf("Sum256: got %x, want %x", got, want)
				}
				h := e.New()
				// Write in uneven pieces to exercise buffering.
				for p := data; len(p) > 0; {
					k := min(len(p), 1+len(p)/3)
					h.Write(p[:k])
					p = p[k:]
				}
				if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
					t.Errorf("New().Sum: got %x, want %x", got, want)
				}
				var dst [1][32]byte
				e.SumBatch(dst[:], [][]byte{data})
				if dst[0] != want {
					t.Errorf("SumBatch of one: got %x, want %x", dst[0], want)
				}
			})
		}
	}
	// Package-level functions.
	data := randBytes(7, 1000)
	want := sha256.Sum256(data)
	if got := hashing.Sum256(data); got != want {
		t.Errorf("hashing.Sum256: got %x, want %x", got, want)
	}
	h := hashing.New()
	h.Write(data)
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Errorf("hashing.New: got %x, want %x", got, want)
	}
}

func TestKnownVectors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	}
	for _, e := range hashing.Engines() {
		for _, tt := range tests {
			got := e.Sum256([]byte(tt.in))
			var b [1][32]byte
			e.SumBatch(b[:], [][]byte{[]byte(tt.in)})
			if hex.EncodeToString(got[:]) != tt.want || hex.EncodeToString(b[0][:]) != tt.want {
				t.Errorf("%v(%q): got %x (batch %x), want %s", e, tt.in, got, b[0], tt.want)
			}
		}
	}
}

// TestSumBatchMixed holds every engine's batch call to crypto/sha256 on
// batches of mixed lengths, of sizes around the 16-lane group.
func TestSumBatchMixed(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, e := range hashing.Engines() {
		for _, count := range []int{0, 1, 3, 4, 15, 16, 17, 33, 40} {
			t.Run(fmt.Sprintf("%v/%d", e, count), func(t *testing.T) {
				blocks := make([][]byte, count)
				for i := range blocks {
					blocks[i] = randBytes(uint64(i), lengths[r.IntN(len(lengths))])
				}
				dst := make([][32]byte, count+1) // dst longer than blocks is fine
				e.SumBatch(dst, blocks)
				for i, b := range blocks {
					if want := sha256.Sum256(b); dst[i] != want {
						t.Errorf("block %d (len %d): got %x, want %x", i, len(b), dst[i], want)
					}
				}
				if dst[count] != ([32]byte{}) {
					t.Errorf("dst[%d] beyond the batch was written: %x", count, dst[count])
				}
			})
		}
	}
}

// TestSumBatchEqualLengths gives every engine batches of distinct messages
// of one length, which the 2-way and 16-lane kernels hash side by side.
func TestSumBatchEqualLengths(t *testing.T) {
	for _, e := range hashing.Engines() {
		for _, n := range lengths {
			blocks := make([][]byte, 5) // two pairs and an odd one
			for i := range blocks {
				blocks[i] = randBytes(uint64(1000*n+i), n)
			}
			dst := make([][32]byte, len(blocks))
			e.SumBatch(dst, blocks)
			for i, b := range blocks {
				if want := sha256.Sum256(b); dst[i] != want {
					t.Errorf("%v, length %d, block %d: got %x, want %x", e, n, i, dst[i], want)
				}
			}
		}
	}
}

func TestSumBatchShortDstPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SumBatch with len(dst) < len(blocks) did not panic")
		}
	}()
	hashing.SumBatch(make([][32]byte, 1), [][]byte{{1}, {2}})
}

// TestAVX512 runs the 16-lane engine where the CPU has AVX-512. The
// reference machine (AMD EPYC, Zen) does not, so there it skips.
func TestAVX512(t *testing.T) {
	if !hashing.AVX512.Available() {
		t.Skip("hashing: this CPU (or a purego build) has no AVX-512F/DQ/BW/VL; the AVX-512 engine cannot run here and was not tested")
	}
	// Lanes of very different lengths, several crossing the kernel's
	// 8 KiB chunk, so lanes drop out at different rounds.
	blocks := make([][]byte, 16)
	for i := range blocks {
		blocks[i] = randBytes(uint64(100+i), []int{0, 1, 55, 56, 64, 65, 8191, 8192, 8193, 20000, 512 << 10, 63, 128, 129, 16 << 10, 3}[i])
	}
	dst := make([][32]byte, 16)
	hashing.AVX512.SumBatch(dst, blocks)
	for i, b := range blocks {
		if want := sha256.Sum256(b); dst[i] != want {
			t.Errorf("lane %d (len %d): got %x, want %x", i, len(b), dst[i], want)
		}
	}
}

// TestUnavailableEngineFallsBack checks that an engine this CPU cannot run
// still gives correct digests (through crypto/sha256) instead of faulting.
func TestUnavailableEngineFallsBack(t *testing.T) {
	for _, e := range []hashing.Engine{hashing.SHANI, hashing.AVX512, hashing.Engine(200)} {
		if e.Available() {
			continue
		}
		data := randBytes(3, 777)
		want := sha256.Sum256(data)
		if got := e.Sum256(data); got != want {
			t.Errorf("%v.Sum256: got %x, want %x", e, got, want)
		}
		dst := make([][32]byte, 20)
		blocks := make([][]byte, 20)
		for i := range blocks {
			blocks[i] = data[:i*30]
		}
		e.SumBatch(dst, blocks)
		for i, b := range blocks {
			if w := sha256.Sum256(b); dst[i] != w {
				t.Errorf("%v.SumBatch[%d]: got %x, want %x", e, i, dst[i], w)
			}
		}
	}
}

func TestEngineString(t *testing.T) {
	tests := map[hashing.Engine]string{hashing.Stdlib: "stdlib", hashing.SHANI: "sha-ni", hashing.AVX512: "avx512", hashing.SHANI2: "sha-ni-2way", 9: "engine(9)"}
	for e, want := range tests {
		if got := e.String(); got != want {
			t.Errorf("Engine(%d).String() = %q, want %q", uint8(e), got, want)
		}
	}
}

func TestSumBatchAllocs(t *testing.T) {
	blocks := make([][]byte, 32)
	for i := range blocks {
		blocks[i] = randBytes(uint64(i), 4096+i)
	}
	dst := make([][32]byte, len(blocks))
	for _, e := range hashing.Engines() {
		if a := testing.AllocsPerRun(20, func() { e.SumBatch(dst, blocks) }); a != 0 {
			t.Errorf("%v.SumBatch: got %v allocations per call, want 0", e, a)
		}
	}
	if a := testing.AllocsPerRun(20, func() { hashing.SumBatch(dst, blocks) }); a != 0 {
		t.Errorf("SumBatch: got %v allocations per call, want 0", a)
	}
}

func TestZeroDigest(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 100000, 512 << 10, 512<<10 - 1, 1 << 20, 16 << 20, 32 << 20} {
		want := sha256.Sum256(make([]byte, n))
		for range 2 { // computed, then remembered
			if got := hashing.ZeroDigest(n); got != want {
				t.Errorf("ZeroDigest(%d): got %x, want %x", n, got, want)
			}
		}
	}
	if got, want := hashing.ZeroDigest(-5), sha256.Sum256(nil); got != want {
		t.Errorf("ZeroDigest(-5): got %x, want %x", got, want)
	}
	hashing.ZeroDigest(512 << 10)
	hashing.ZeroDigest(12345)
	if a := testing.AllocsPerRun(100, func() { hashing.ZeroDigest(512 << 10); hashing.ZeroDigest(12345) }); a != 0 {
		t.Errorf("ZeroDigest of a known length: got %v allocations, want 0", a)
	}
}

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 4096, 16 << 10, 16<<10 + 1, 40000, 512 << 10} {
		b := make([]byte, n)
		if !hashing.IsZero(b) {
			t.Errorf("IsZero(%d zero bytes) = false, want true", n)
		}
		// A single non-zero byte anywhere, including past each chunk edge.
		for _, at := range []int{0, n / 2, n - 1, 16 << 10, 16<<10 - 1, 16<<10 + 1} {
			if at < 0 || at >= n {
				continue
			}
			b[at] = 0x10
			if hashing.IsZero(b) {
				t.Errorf("IsZero(%d bytes, byte %d set) = true, want false", n, at)
			}
			b[at] = 0
		}
	}
}

// TestLinearWorkedExample is the worked example of docs/ebs-direct-api.md
// §5.8: blocks 0 (all 0x01), 2 (all 0xAB) and 5 (all 0x02), 512 KiB each,
// written in the order 5, 0, 2 but aggregated in index order.
func TestLinearWorkedExample(t *testing.T) {
	block := func(c byte) []byte { return bytes.Repeat([]byte{c}, 512<<10) }
	digests := map[int][32]byte{5: hashing.Sum256(block(0x02)), 0: hashing.Sum256(block(0x01)), 2: hashing.Sum256(block(0xAB))}
	for i, want := range map[int]string{
		0: "M6FQvOsTwamSIx5ltPrRaBUhL8Bs20CJltMu6yzvnrs=",
		2: "uthdne/3a6/hwzUxh+9U2QG/D++8j9dxB3n4SJrMpLw=",
		5: "Ioxb8/mw3beyMReNfgZ6/5ZqGRsfzT7Q4uNx7KM/zfw=",
	} {
		d := digests[i]
		if got := base64.StdEncoding.EncodeToString(d[:]); got != want {
			t.Errorf("block %d checksum: got %s, want %s", i, got, want)
		}
	}
	var l hashing.Linear
	for _, i := range []int{0, 2, 5} {
		l.Add(digests[i])
	}
	const want = "dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ="
	const wrongText = "qgS6YeYDmOaWPwMv0etJfOtjJt+T6BYqXBVCpOHi6Ho=" // base64 text joined
	got := l.Base64()
	if got != want {
		t.Errorf("Linear.Base64: got %s, want %s", got, want)
	}
	if got == wrongText {
		t.Errorf("Linear joined the base64 text (%s), want the raw digests", wrongText)
	}
	if l.Count() != 3 {
		t.Errorf("Linear.Count: got %d, want 3", l.Count())
	}
	// The wrong interpretation really does give the other value, so the
	// check above can tell them apart.
	var text string
	for _, i := range []int{0, 2, 5} {
		d := digests[i]
		text += base64.StdEncoding.EncodeToString(d[:])
	}
	if w := sha256.Sum256([]byte(text)); base64.StdEncoding.EncodeToString(w[:]) != wrongText {
		t.Errorf("base64-text variant: got %s, want %s", base64.StdEncoding.EncodeToString(w[:]), wrongText)
	}
	// Sum does not end the stream: adding more changes the result.
	sum := l.Sum()
	l.Add(digests[5])
	if l.Sum() == sum {
		t.Error("Linear.Sum unchanged after another Add")
	}
}

func TestLinearEmpty(t *testing.T) {
	var l hashing.Linear
	if got, want := l.Base64(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; got != want {
		t.Errorf("empty Linear: got %s, want %s", got, want)
	}
}

func TestLinearMatchesConcatenation(t *testing.T) {
	var l hashing.Linear
	h := sha256.New()
	for i := range 1000 {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		l.Add(d)
		h.Write(d[:])
	}
	var want [32]byte
	h.Sum(want[:0])
	if got := l.Sum(); got != want {
		t.Errorf("Linear over 1000 digests: got %x, want %x", got, want)
	}
}

// FuzzSum holds every engine this CPU runs, single and batch (a batch of
// mixed lengths cut from the input), to crypto/sha256.
func FuzzSum(f *testing.F) {
	for _, n := range lengths {
		if n <= 9000 {
			f.Add(randBytes(uint64(n), n), uint8(n))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		want := sha256.Sum256(data)
		// Batch: 17 pieces (one full 16-lane group plus one), each a
		// different prefix of data.
		blocks := make([][]byte, 17)
		for i := range blocks {
			blocks[i] = data[:(len(data)*i/16+int(cut))%(len(data)+1)]
		}
		dst := make([][32]byte, len(blocks))
		// And a batch of equal-length messages: data and variations of it.
		same := make([][]byte, 5)
		for i := range same {
			same[i] = bytes.Clone(data)
			if len(data) > 0 {
				same[i][(int(cut)+i*7)%len(data)] ^= byte(i)
			}
		}
		sameDst := make([][32]byte, len(same))
		for _, e := range hashing.Engines() {
			e.SumBatch(sameDst, same)
			for i, b := range same {
				if w := sha256.Sum256(b); sameDst[i] != w {
					t.Fatalf("%v.SumBatch equal lengths [%d] (len %d): got %x, want %x", e, i, len(b), sameDst[i], w)
				}
			}
			if got := e.Sum256(data); got != want {
				t.Fatalf("%v.Sum256(len %d): got %x, want %x", e, len(data), got, want)
			}
			h := e.New()
			k := int(cut) % (len(data) + 1)
			h.Write(data[:k])
			io.Copy(h, bytes.NewReader(data[k:]))
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Fatalf("%v.New (split at %d, len %d): got %x, want %x", e, k, len(data), got, want)
			}
			clear(dst)
			e.SumBatch(dst, blocks)
			for i, b := range blocks {
				if w := sha256.Sum256(b); dst[i] != w {
					t.Fatalf("%v.SumBatch[%d] (len %d): got %x, want %x", e, i, len(b), dst[i], w)
				}
			}
		}
	})
}
