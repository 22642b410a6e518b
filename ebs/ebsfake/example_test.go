package ebsfake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// Example starts the fake on 127.0.0.1 and writes a one-block snapshot with the Go SDK.
func Example() {
	srv, err := ebsfake.New(ebsfake.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	ctx := context.Background()
	client := ebs.New(ebs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(hs.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	start, err := client.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		log.Fatal(err)
	}
	id := aws.ToString(start.SnapshotId)
	fmt.Println("start:", start.Status, *start.BlockSize)

	data := bytes.Repeat([]byte{0xAB}, ebsfake.BlockSize)
	sum := sha256.Sum256(data)
	put, err := client.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId: aws.String(id), BlockIndex: aws.Int32(0), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(ebsfake.BlockSize), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("put checksum:", aws.ToString(put.Checksum))

	linear := sha256.Sum256(sum[:]) // LINEAR over one block: SHA-256 of its raw digest
	done, err := client.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(1),
		Checksum:                  aws.String(base64.StdEncoding.EncodeToString(linear[:])),
		ChecksumAlgorithm:         types.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("complete:", done.Status)
	info, _ := srv.Snapshot(id)
	fmt.Println("then:", info.Status, info.WrittenBlocks, "block")
	// Output:
	// start: pending 524288
	// put checksum: uthdne/3a6/hwzUxh+9U2QG/D++8j9dxB3n4SJrMpLw=
	// complete: pending
	// then: completed 1 block
}

// ExampleServer_AddFault fails the first PutSnapshotBlock with a 500; the Go SDK's standard
// retryer sends it again and the block is stored once.
func ExampleServer_AddFault() {
	srv, err := ebsfake.New(ebsfake.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx := context.Background()
	client := ebs.New(ebs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	start, err := client.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		log.Fatal(err)
	}
	srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, SnapshotID: *start.SnapshotId, Nth: 1, Fault: ebsfake.FaultInternal})

	data := make([]byte, ebsfake.BlockSize)
	data[0] = 1
	sum := sha256.Sum256(data)
	_, err = client.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId: start.SnapshotId, BlockIndex: aws.Int32(7), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(ebsfake.BlockSize), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	st := srv.Stats()
	fmt.Println("put error:", err)
	fmt.Println("put requests:", st.Requests[ebsfake.OpPutSnapshotBlock], "faults:", st.Faults, "stored:", st.BlocksStored)
	// Output:
	// put error: <nil>
	// put requests: 2 faults: 1 stored: 1
}
