package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Bucket returns a bucket on the S3 server named by BLOCKFERRY_S3_ENDPOINT
// (scripts/test.sh starts MinIO and sets it) and points the CLI at that
// server. Without it the test skips, or fails under CI=true.
func s3Bucket(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("BLOCKFERRY_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but BLOCKFERRY_S3_ENDPOINT is not set: run the tests with scripts/test.sh, which starts MinIO")
		}
		t.Skip("no S3 server: set BLOCKFERRY_S3_ENDPOINT (+ AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as scripts/test.sh does with MinIO")
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", ep)
	if os.Getenv("AWS_REGION") == "" {
		t.Setenv("AWS_REGION", "us-east-1")
	}
	bucket := os.Getenv("BLOCKFERRY_S3_BUCKET")
	if bucket == "" {
		bucket = "blockferry-cli-test"
	}
	c := awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ep), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}, nil
		}),
	})
	_, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		t.Fatalf("create bucket %s on %s: %v", bucket, ep, err)
	}
	return bucket
}

func TestS3BackupRestore(t *testing.T) {
	bucket := s3Bucket(t)
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	store := fmt.Sprintf("s3://%s/cli-%d", bucket, time.Now().UnixNano())

	var r1, r2 copyResult
	mustJSON(t, &r1, "copy", a, store+"#one", "--block-size", "64KiB", "--cache-dir", "")
	mustJSON(t, &r2, "copy", b, store+"#two", "--block-size", "64KiB", "--cache-dir", "")
	if r2.Store == nil || r2.Store.Uploaded >= r1.Store.Uploaded {
		t.Errorf("second backup uploaded %+v, first %+v: want fewer chunks the second time", r2.Store, r1.Store)
	}
	var ls []snapshotJSON
	mustJSON(t, &ls, "store", "ls", store)
	if len(ls) != 2 {
		t.Fatalf("store ls: got %d snapshots, want 2: %+v", len(ls), ls)
	}
	out := filepath.Join(dir, "restored.img")
	mustCLI(t, "copy", store+"#two", out, "--verify=all")
	if !bytes.Equal(readFile(t, out), v2.bytes()) {
		t.Fatalf("restore from S3: content differs from v2")
	}
	var vr storeVerifyJSON
	mustJSON(t, &vr, "store", "verify", store, "--read-data")
	if !vr.OK {
		t.Errorf("store verify on S3: %+v", vr)
	}
}
