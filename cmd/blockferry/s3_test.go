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
	"github.com/blockferry/blockferry/replicate"
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
	// Restore v2 onto a copy of v1: the target is hashed locally and
	// diffed against the snapshot's manifest, so each distinct new content
	// is fetched once (or copied from where the target already holds it)
	// and only the changed blocks are touched.
	onto := filepath.Join(dir, "onto.img")
	if err := os.WriteFile(onto, readFile(t, a), 0o644); err != nil {
		t.Fatal(err)
	}
	var r3 copyResult
	mustJSON(t, &r3, "copy", store+"#two", onto, "--state-dir", filepath.Join(dir, "state"))
	if !bytes.Equal(readFile(t, onto), v2.bytes()) {
		t.Fatalf("restore from S3 onto a copy of v1: content differs from v2")
	}
	_, changed, zeroed, _, distinct, _ := expectedDiff(v1.bytes(), v2.bytes(), testBS)
	st := r3.Stats
	if r3.Plan != replicate.PlanLiveManifest {
		t.Errorf("restore onto v1: plan %s, want %s", r3.Plan, replicate.PlanLiveManifest)
	}
	if got := st.Read + st.CopiedLocal; got != distinct {
		t.Errorf("restore onto v1: %d contents fetched + %d copied locally, want the %d distinct new contents", st.Read, st.CopiedLocal, distinct)
	}
	if got := st.Written + st.Deduplicated + st.CopiedLocal + st.Zeroed; got != changed+zeroed {
		t.Errorf("restore onto v1: %d blocks touched (%+v), want the %d changed and %d zeroed", got, st, changed, zeroed)
	}

	var vr storeVerifyJSON
	mustJSON(t, &vr, "store", "verify", store, "--read-data")
	if !vr.OK {
		t.Errorf("store verify on S3: %+v", vr)
	}
}
