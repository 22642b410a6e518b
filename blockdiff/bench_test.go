package blockdiff

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchPair returns a base of n 4 KiB data blocks with distinct random
// digests and a target with about rate of its blocks changed (mostly to new
// data, some to zero), both in memory. Built once per size.
var benchPairs sync.Map // int64 -> [2]*Manifest

func benchPair(b *testing.B, n int64, rate float64) (base, target *Manifest) {
	key := fmt.Sprint(n, rate)
	if v, ok := benchPairs.Load(key); ok {
		p := v.([2]*Manifest)
		return p[0], p[1]
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	g := Geometry{Size: n * 4096, BlockSize: 4096}
	base, _ = NewManifest(g)
	target, _ = NewManifest(g)
	for i := range base.kinds {
		base.kinds[i] = Data
	}
	for p := range base.pages {
		base.pages[p] = make([]Digest, digestPage)
		for j := range base.pages[p] {
			fillDigest(rng, &base.pages[p][j])
		}
		target.pages[p] = slices.Clone(base.pages[p])
	}
	copy(target.kinds, base.kinds)
	for range int64(float64(n) * rate) {
		i := rng.Int64N(n)
		if rng.IntN(10) == 0 {
			target.kinds[i] = Zero
			continue
		}
		fillDigest(rng, &target.pages[i/digestPage][i%digestPage])
	}
	benchPairs.Store(key, [2]*Manifest{base, target})
	return base, target
}

// cpuTime returns the process's user+system CPU time. On a shared machine
// it shows the work done better than the wall clock; it includes the GC.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// opaque hides an iterator's concrete type, forcing Diff's generic path.
type opaque struct{ Iterator }

func BenchmarkDiff(b *testing.B) {
	for _, n := range []int64{1 << 20, 32 << 20} {
		var base, target *Manifest
		var cpu0 time.Duration
		setup := func(b *testing.B) {
			base, target = benchPair(b, n, 0.05)
			runtime.GC()
			cpu0 = cpuTime()
		}
		report := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*n), "ns/block")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(int64(b.N)*n), "cpu-ns/block")
		}
		b.Run(fmt.Sprintf("blocks=%dMi/impl=manifests", n>>20), func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			var cs *ChangeSet
			for b.Loop() {
				var err error
				cs, err = Diff(base.Iter(), target.Iter())
				if err != nil || cs.Stats.Changed == 0 {
					b.Fatal(err, cs.Stats)
				}
			}
			runtime.ReadMemStats(&ms1)
			report(b)
			// Memory per changed block: allocated while diffing, and kept
			// by the returned change set.
			changed := float64(cs.Stats.Changed)
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/changed, "B/changed")
			kept := 8*cap(cs.byGroup) + 8*cap(cs.off) + DigestSize*cap(cs.digests) + 16*cap(cs.zeros)
			b.ReportMetric(float64(kept)/changed, "kept-B/changed")
		})
		b.Run(fmt.Sprintf("blocks=%dMi/impl=iterators", n>>20), func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				cs, err := Diff(opaque{base.Iter()}, opaque{target.Iter()})
				if err != nil || cs.Stats.Changed == 0 {
					b.Fatal(err, cs.Stats)
				}
			}
			report(b)
		})
		// Baseline: the least any diff must do, comparing the two digest
		// lists with bytes.Equal page by page (no kinds, no grouping).
		b.Run(fmt.Sprintf("blocks=%dMi/impl=baseline-compare", n>>20), func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				var diff int
				for p := range base.pages {
					bp, tp := base.pages[p], target.pages[p]
					for j := range bp {
						if !bytes.Equal(bp[j][:], tp[j][:]) {
							diff++
						}
					}
				}
				if diff == 0 {
					b.Fatal("no differences")
				}
			}
			report(b)
		})
	}
}

func BenchmarkDiffStream(b *testing.B) {
	const n = 1 << 20
	base, target := benchPair(b, n, 0.05)
	var eb, et bytes.Buffer
	base.WriteTo(&eb)
	target.WriteTo(&et)
	b.ReportAllocs()
	b.SetBytes(2 * n * DigestSize)
	for b.Loop() {
		rb, err := NewReader(bytes.NewReader(eb.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		rt, err := NewReader(bytes.NewReader(et.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		if cs, err := Diff(rb, rt); err != nil || cs.Stats.Changed == 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*n), "ns/block")
}

// BenchmarkEncode and BenchmarkDecode measure throughput in MB/s of the
// digest list (32 bytes per data block), for all-data manifests with
// distinct digests (incompressible, the worst case). The baseline is
// SHA-256 over the same bytes, which the trailer needs anyway.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int64{64 << 10, 1 << 20} {
		m, _ := benchPair(b, n, 0.05)
		b.Run(fmt.Sprintf("blocks=%dKi/impl=WriteTo", n>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				if _, err := m.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("blocks=%dKi/impl=baseline-sha256", n>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				h := sha256.New()
				for _, p := range m.pages {
					for j := range p {
						h.Write(p[j][:])
					}
				}
				h.Sum(nil)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int64{64 << 10, 1 << 20} {
		m, _ := benchPair(b, n, 0.05)
		var enc bytes.Buffer
		m.WriteTo(&enc)
		b.Run(fmt.Sprintf("blocks=%dKi/impl=ReadManifest", n>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				if _, err := ReadManifest(bytes.NewReader(enc.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("blocks=%dKi/impl=Reader.Next", n>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(enc.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				for err == nil {
					_, err = r.Next()
				}
				if err != io.EOF {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("blocks=%dKi/impl=baseline-sha256", n>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n * DigestSize)
			for b.Loop() {
				sha256.Sum256(enc.Bytes())
			}
		})
	}
}
