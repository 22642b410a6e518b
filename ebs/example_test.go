package ebs_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/source"
)

// Example copies a 4-block volume into a new EBS snapshot of a fake EBS
// endpoint and reads it back.
func Example() {
	srv, err := ebsfake.New(ebsfake.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	ctx := context.Background()
	clients, err := ebs.NewClientsFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}, ebs.ClientOptions{EBSEndpoint: hs.URL, EC2Endpoint: hs.URL})
	if err != nil {
		log.Fatal(err)
	}

	vol := make([]byte, 4*ebs.BlockSize)
	copy(vol, bytes.Repeat([]byte("blockferry"), 100)) // block 0
	vol[3*ebs.BlockSize] = 1                           // block 3; 1 and 2 stay zero
	src, err := source.NewMemory(vol, ebs.BlockSize)
	if err != nil {
		log.Fatal(err)
	}
	snk, err := ebs.NewSnapshot(ctx, clients.EBS, nil, ebs.SinkOptions{Size: int64(len(vol)), Description: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer snk.Close()
	res, err := replicate.Run(ctx, src, snk, replicate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written:", res.Stats.Written, "skipped zero:", res.Stats.SkippedZero)

	back, err := ebs.OpenSnapshot(ctx, clients.EBS, snk.SnapshotID(), ebs.SourceOptions{Size: int64(len(vol))})
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, ebs.BlockSize)
	for i := int64(0); i < back.Geometry().Blocks(); i++ {
		if _, err := back.ReadBlock(ctx, i, buf); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("block %d equal: %v\n", i, bytes.Equal(buf, vol[i*ebs.BlockSize:(i+1)*ebs.BlockSize]))
	}
	// Output:
	// written: 2 skipped zero: 2
	// block 0 equal: true
	// block 1 equal: true
	// block 2 equal: true
	// block 3 equal: true
}
