package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/castest"
	"github.com/blockferry/blockferry/cas/s3"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// server is the S3 server the tests use, set up by TestMain.
var server struct {
	endpoint, bucket string
	skip             string // why there is none
}

func TestMain(m *testing.M) {
	stop := setup()
	code := m.Run()
	stop()
	os.Exit(code)
}

// setup finds an S3 server: BLOCKFERRY_S3_ENDPOINT (with the AWS_* credentials
// and BLOCKFERRY_S3_BUCKET), or a MinIO it starts on 127.0.0.1.
func setup() (stop func()) {
	stop = func() {}
	server.bucket = os.Getenv("BLOCKFERRY_S3_BUCKET")
	if server.bucket == "" {
		server.bucket = "blockferry-test"
	}
	if ep := os.Getenv("BLOCKFERRY_S3_ENDPOINT"); ep != "" {
		server.endpoint = ep
		if os.Getenv("AWS_REGION") == "" {
			os.Setenv("AWS_REGION", "us-east-1")
		}
		return stop
	}
	bin := findMinio()
	if bin == "" {
		server.skip = "no S3 server: set BLOCKFERRY_S3_ENDPOINT (+ AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, BLOCKFERRY_S3_BUCKET), or install MinIO (BLOCKFERRY_MINIO, $HOME/.cache/blockferry/bin/minio or PATH); scripts/test.sh does both"
		return stop
	}
	dir, err := os.MkdirTemp("", "blockferry-minio-")
	if err != nil {
		server.skip = "minio: " + err.Error()
		return stop
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		server.skip = "minio: " + err.Error()
		return stop
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", "127.0.0.1:0", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=blockferry", "MINIO_ROOT_PASSWORD=blockferry-secret")
	logf, _ := os.Create(filepath.Join(dir, "minio.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		server.skip = "minio: " + err.Error()
		return stop
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		os.RemoveAll(dir)
	}
	server.endpoint = "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(server.endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
			server.skip = fmt.Sprintf("minio %s did not become live on %s in 60 s; its log:\n%s", bin, addr, log)
			return stop
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Setenv("AWS_ACCESS_KEY_ID", "blockferry")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "blockferry-secret")
	os.Setenv("AWS_REGION", "us-east-1")
	return stop
}

func findMinio() string {
	if p := os.Getenv("BLOCKFERRY_MINIO"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		cands := []string{filepath.Join(home, ".cache", "blockferry", "bin", "minio")}
		more, _ := filepath.Glob(filepath.Join(home, ".cache", "blockferry", "bin", "minio-*"))
		for _, p := range append(cands, more...) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	return ""
}

func need(t *testing.T) {
	t.Helper()
	if server.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(server.skip)
		}
		t.Skip(server.skip)
	}
}

var bucketReady bool

// newBackend returns a backend on a fresh random prefix of the test bucket,
// creating the bucket the first time.
func newBackend(t *testing.T) *s3.Backend {
	t.Helper()
	need(t)
	ctx := context.Background()
	p := make([]byte, 6)
	rand.Read(p)
	b, err := s3.New(ctx, s3.Options{Bucket: server.bucket, Prefix: "test-" + hex.EncodeToString(p), Endpoint: server.endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bucketReady {
		c := rawClient(t)
		_, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(server.bucket)})
		var owned *types.BucketAlreadyOwnedByYou
		var exists *types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			t.Fatalf("create bucket %s: %v", server.bucket, err)
		}
		bucketReady = true
	}
	return b
}

func rawClient(t *testing.T) *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(server.endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}, nil
		}),
	})
}

func TestBackend(t *testing.T) {
	castest.TestBackend(t, func(t *testing.T) cas.Backend { return newBackend(t) })
}

func TestStore(t *testing.T) {
	castest.TestStore(t, func(t *testing.T) cas.Backend { return newBackend(t) })
}

func TestNotFoundKeepsSDKError(t *testing.T) {
	b := newBackend(t)
	_, err := b.Get(context.Background(), "no/such/key")
	var nsk *types.NoSuchKey
	if !errors.Is(err, blockdiff.ErrNotFound) || !errors.As(err, &nsk) {
		t.Fatalf("Get missing: got %v, want ErrNotFound with *types.NoSuchKey in the chain", err)
	}
}

func TestPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	a, b := newBackend(t), newBackend(t)
	if err := a.Put(ctx, "k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if has, err := b.Has(ctx, "k"); err != nil || has {
		t.Errorf("Has on another prefix: got %v, %v; want false", has, err)
	}
	got, err := a.Get(ctx, "k")
	if err != nil || !bytes.Equal(got, []byte("a")) {
		t.Errorf("Get: got %q, %v; want \"a\"", got, err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []s3.Options{{}, {Bucket: "b", Prefix: "a//b"}, {Bucket: "b", Prefix: "../x"}} {
		if _, err := s3.New(context.Background(), o); err == nil {
			t.Errorf("New(%+v): got nil error, want one", o)
		}
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	need(t)
	newBackend(t) // the bucket exists
	t.Setenv("AWS_ENDPOINT_URL_S3", server.endpoint)
	ctx := context.Background()
	b, err := s3.New(ctx, s3.Options{Bucket: server.bucket, Prefix: "env-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put through AWS_ENDPOINT_URL_S3: %v", err)
	}
	if got, err := b.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get: got %q, %v; want \"v\"", got, err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix, snap string
		bad                      bool
	}{
		{in: "s3://bkt", bucket: "bkt"},
		{in: "s3://bkt/a/b#mon", bucket: "bkt", prefix: "a/b", snap: "mon"},
		{in: "s3://bkt/pre/#x", bucket: "bkt", prefix: "pre", snap: "x"},
		{in: "cas:/dir", bad: true},
		{in: "s3:///nobucket", bad: true},
		{in: "s3://bkt/a/../b", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			o, snap, err := s3.ParseURL(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %+v, want an error", o)
				}
				return
			}
			if err != nil || o.Bucket != tc.bucket || o.Prefix != tc.prefix || snap != tc.snap {
				t.Errorf("got %q %q %q, %v; want %q %q %q", o.Bucket, o.Prefix, snap, err, tc.bucket, tc.prefix, tc.snap)
			}
		})
	}
}

// TestReplicateRoundTrip backs a volume up to MinIO with the replication
// engine, twice, and restores the second version byte for byte.
func TestReplicateRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := castest.NewFaulty(newBackend(t))
	st, err := cas.Open(ctx, f, cas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const bs = 64 << 10
	v1 := castest.Volume(40, 40*bs+123, bs)
	v2 := bytes.Clone(v1)
	copy(v2[3*bs:], castest.Volume(41, 2*bs, bs))
	backup := func(name, parent string, v []byte) cas.Stats {
		src, err := source.NewMemory(v, bs)
		if err != nil {
			t.Fatal(err)
		}
		k, err := st.NewSnapshotSink(ctx, name, src.Geometry(), cas.SnapshotOptions{Parent: parent})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		if _, err := replicate.Run(ctx, src, k, replicate.Options{Concurrency: 8}); err != nil {
			t.Fatalf("backup %s: %v", name, err)
		}
		return k.Stats()
	}
	backup("v1", "", v1)
	f.Reset()
	s2 := backup("v2", "v1", v2)
	if s2.Uploaded > 2 || s2.Uploaded == 0 {
		t.Errorf("v2 uploaded %d chunks, want 1 or 2 (the changed blocks)", s2.Uploaded)
	}
	f.Reset()
	if s := backup("v2-again", "v2", v2); s.Uploaded != 0 || s.HasRequests != 0 {
		t.Errorf("backup of an unchanged volume: got %d uploads and %d Has requests, want 0 and 0", s.Uploaded, s.HasRequests)
	}
	for _, k := range f.PutKeys() {
		if strings.HasPrefix(k, "chunks/") {
			t.Errorf("backup of an unchanged volume put %s", k)
		}
	}
	sn, err := st.OpenSnapshot(ctx, "v2")
	if err != nil {
		t.Fatal(err)
	}
	out, err := sink.NewMemory(sn.Geometry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Run(ctx, sn, out, replicate.Options{Concurrency: 8}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !bytes.Equal(out.Bytes(), v2) {
		t.Fatalf("restored v2 differs from the volume backed up")
	}
	if rep, err := st.Verify(ctx, true); err != nil || rep.Snapshots != 3 {
		t.Errorf("Verify: got %+v, %v; want 3 clean snapshots", rep, err)
	}
}

func ExampleNew() {
	ctx := context.Background()
	// s3://my-bucket/backups, credentials and region from the environment.
	opts, snap, err := s3.ParseURL("s3://my-bucket/backups#monday")
	if err != nil {
		panic(err)
	}
	b, err := s3.New(ctx, opts)
	if err != nil {
		panic(err)
	}
	store, err := cas.Open(ctx, b, cas.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	sn, err := store.OpenSnapshot(ctx, snap)
	if err != nil {
		panic(err)
	}
	fmt.Println(sn.Geometry())
}
