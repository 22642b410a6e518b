package ebs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// BenchmarkWriteBlock puts 512 KiB blocks to a fake on loopback through
// Sink.WriteBlock, beside the bare SDK call as baseline (the adapter's
// overhead is the difference).
func BenchmarkWriteBlock(b *testing.B) {
	r := newRegion(b, "us-east-1", ebsfake.Options{}, fastClient)
	data := blockdifftest.Volume(1, blockdiff.Geometry{Size: ebs.BlockSize, BlockSize: ebs.BlockSize}, 0, 0)
	d := sha256.Sum256(data)
	b.Run("sdk", func(b *testing.B) {
		out, err := r.c.EBS.StartSnapshot(r.ctx, &awsebs.StartSnapshotInput{VolumeSize: aws.Int64(64)})
		if err != nil {
			b.Fatal(err)
		}
		sum := base64.StdEncoding.EncodeToString(d[:])
		b.SetBytes(ebs.BlockSize)
		b.ReportAllocs()
		i := int32(0)
		for b.Loop() {
			_, err := r.c.EBS.PutSnapshotBlock(r.ctx, &awsebs.PutSnapshotBlockInput{
				SnapshotId: out.SnapshotId, BlockIndex: aws.Int32(i % 65536), BlockData: bytes.NewReader(data),
				DataLength: aws.Int32(ebs.BlockSize), Checksum: aws.String(sum), ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("sink", func(b *testing.B) {
		s, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, ebs.SinkOptions{Size: 64 * ebs.GiB})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(ebs.BlockSize)
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			if err := s.WriteBlock(r.ctx, i%65536, data, d); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkReadBlock reads a listed 512 KiB block through Source.ReadBlock
// (with checksum verification), beside the bare SDK GetSnapshotBlock and a
// read of its body.
func BenchmarkReadBlock(b *testing.B) {
	r := newRegion(b, "us-east-1", ebsfake.Options{}, fastClient)
	data := blockdifftest.Volume(2, blockdiff.Geometry{Size: ebs.BlockSize, BlockSize: ebs.BlockSize}, 0, 0)
	id := r.seed(1, "", data, false)
	src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, ebs.BlockSize)
	b.Run("sdk", func(b *testing.B) {
		l, err := r.c.EBS.ListSnapshotBlocks(r.ctx, &awsebs.ListSnapshotBlocksInput{SnapshotId: aws.String(id)})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(ebs.BlockSize)
		b.ReportAllocs()
		for b.Loop() {
			out, err := r.c.EBS.GetSnapshotBlock(r.ctx, &awsebs.GetSnapshotBlockInput{SnapshotId: aws.String(id), BlockIndex: aws.Int32(0), BlockToken: l.Blocks[0].BlockToken})
			if err != nil {
				b.Fatal(err)
			}
			var bb bytes.Buffer
			bb.Grow(ebs.BlockSize)
			bb.ReadFrom(out.BlockData)
			out.BlockData.Close()
		}
	})
	b.Run("source", func(b *testing.B) {
		b.SetBytes(ebs.BlockSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.ReadBlock(r.ctx, 0, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
