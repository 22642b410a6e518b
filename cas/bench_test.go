package cas_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/castest"
	"github.com/blockferry/blockferry/hashing"
)

// BenchmarkWriteBlock measures backing up distinct blocks (half random,
// half text-like, as castest.Volume makes them) into a memory backend, per
// block size and compression level; "raw" (no compression) is the
// baseline. The digest is computed outside the timed path, as the engine
// passes it in.
func BenchmarkWriteBlock(b *testing.B) {
	ctx := context.Background()
	for _, bs := range []int{64 << 10, 512 << 10} {
		for _, lv := range []struct {
			name  string
			level int
		}{{"raw", -1}, {"zstd1", 1}, {"zstd3", 3}} {
			b.Run(fmt.Sprintf("bs=%dK/%s", bs>>10, lv.name), func(b *testing.B) {
				vol := castest.Volume(3, int64(16*bs), bs)
				st, err := cas.Open(ctx, cas.NewMemory(), cas.Options{CompressionLevel: lv.level})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				const blocks = 1 << 20
				k, err := st.NewSnapshotSink(ctx, "bench", blockdiff.Geometry{Size: blocks * int64(bs), BlockSize: bs}, cas.SnapshotOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer k.Close()
				blk := make([]byte, bs)
				b.SetBytes(int64(bs))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					copy(blk, vol[(i%16)*bs:(i%16+1)*bs])
					binary.LittleEndian.PutUint64(blk, uint64(i)+1) // distinct content
					b.StopTimer()
					d := hashing.Sum256(blk)
					b.StartTimer()
					if err := k.WriteBlock(ctx, int64(i%blocks), blk, d); err != nil {
						b.Fatal(err)
					}
					i++
				}
				ks := k.Stats()
				b.ReportMetric(float64(ks.StoredBytes)/float64(max(ks.UploadedRaw, 1)), "stored/raw")
			})
		}
	}
}

// BenchmarkReadBlock measures restoring (fetch, decompress, verify) from a
// memory backend.
func BenchmarkReadBlock(b *testing.B) {
	ctx := context.Background()
	for _, bs := range []int{64 << 10, 512 << 10} {
		for _, lv := range []struct {
			name  string
			level int
		}{{"raw", -1}, {"zstd3", 3}} {
			b.Run(fmt.Sprintf("bs=%dK/%s", bs>>10, lv.name), func(b *testing.B) {
				st, err := cas.Open(ctx, cas.NewMemory(), cas.Options{CompressionLevel: lv.level})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				vol := castest.Volume(4, int64(16*bs), bs)
				if _, err := castest.Backup(ctx, st, "r", vol, bs); err != nil {
					b.Fatal(err)
				}
				sn, err := st.OpenSnapshot(ctx, "r")
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, bs)
				b.SetBytes(int64(bs))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := sn.ReadBlock(ctx, int64(i%16), buf); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
