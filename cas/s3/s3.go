package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
)

// API is the part of the S3 client the backend calls; *s3.Client
// implements it, and tests may pass a small fake.
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	s3.ListObjectsV2APIClient
}

// Options configure [New]. Bucket is required; the zero value of every
// other field works.
type Options struct {
	// Bucket is the bucket holding the store. Required.
	Bucket string
	// Prefix is prepended to every key, so that several stores can share
	// a bucket. "" means the bucket root; a trailing "/" is added if
	// missing.
	Prefix string
	// Region is the bucket's region. "" means the SDK's configuration
	// (AWS_REGION, the shared config file), then "us-east-1".
	Region string
	// Endpoint is the URL of an S3-compatible server such as MinIO
	// ("http://127.0.0.1:9000"). "" means the SDK's choice: AWS, or
	// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when set.
	Endpoint string
	// PathStyle addresses the bucket in the path (host/bucket/key) instead
	// of the host name; most S3-compatible servers (MinIO) need it.
	// Default: on when an endpoint other than AWS's is configured (Endpoint,
	// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), off otherwise.
	PathStyle bool
	// Client is the S3 client to use. nil means one built from
	// config.LoadDefaultConfig (the standard credential chain and the
	// SDK's retryer) with Region, Endpoint and PathStyle applied. When set,
	// Region, Endpoint and PathStyle are ignored.
	Client API
}

// Backend is a [cas.Backend] on an S3 bucket. It is safe for concurrent use.
type Backend struct {
	c      API
	bucket string
	prefix string
}

var _ cas.Backend = (*Backend)(nil)

// New returns a backend on opts.Bucket. It does not contact the server;
// the first request does (so [cas.Open] reports a wrong bucket or
// credentials).
func New(ctx context.Context, opts Options) (*Backend, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3: no bucket given: set Options.Bucket (s3://BUCKET/PREFIX)")
	}
	p := strings.TrimPrefix(opts.Prefix, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if p != "" {
		if err := cas.ValidKey(strings.TrimSuffix(p, "/")); err != nil {
			return nil, fmt.Errorf("s3: prefix %q: %w", opts.Prefix, err)
		}
	}
	b := &Backend{c: opts.Client, bucket: opts.Bucket, prefix: p}
	if b.c == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
		}
		if opts.Region != "" {
			cfg.Region = opts.Region
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		b.c = s3.NewFromConfig(cfg, func(o *s3.Options) {
			if opts.Endpoint != "" {
				o.BaseEndpoint = aws.String(opts.Endpoint)
			}
			o.UsePathStyle = opts.PathStyle || opts.Endpoint != "" ||
				os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
		})
	}
	return b, nil
}

// String returns "s3://BUCKET/PREFIX".
func (b *Backend) String() string { return "s3://" + b.bucket + "/" + b.prefix }

func (b *Backend) key(k string) (string, error) {
	if err := cas.ValidKey(k); err != nil {
		return "", err
	}
	return b.prefix + k, nil
}

// mapErr wraps err, keeping it in the chain, and maps S3's not-found
// errors to [blockdiff.ErrNotFound].
func (b *Backend) mapErr(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3: %s s3://%s/%s%s: %w: %w", op, b.bucket, b.prefix, key, blockdiff.ErrNotFound, err)
	}
	return fmt.Errorf("s3: %s s3://%s/%s%s: %w", op, b.bucket, b.prefix, key, err)
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && !isNoSuchBucket(err)
}

func isNoSuchBucket(err error) bool {
	var nsb *types.NoSuchBucket
	var ae smithy.APIError
	return errors.As(err, &nsb) || (errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket")
}

// Get returns the object stored under key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := b.key(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := b.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &k})
	if err != nil {
		return nil, b.mapErr("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, b.mapErr("get", key, err)
	}
	return buf.Bytes(), nil
}

// Put stores data under key with one PutObject (atomic in S3).
func (b *Backend) Put(ctx context.Context, key string, data []byte) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = b.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &b.bucket, Key: &k,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return b.mapErr("put", key, err)
	}
	return nil
}

// Has reports whether key exists (HeadObject).
func (b *Backend) Has(ctx context.Context, key string) (bool, error) {
	k, err := b.key(key)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, err = b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &k})
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, b.mapErr("head", key, err)
	}
	return true, nil
}

// List calls fn for each object whose key starts with prefix, in ascending
// key order, paging with ListObjectsV2.
func (b *Backend) List(ctx context.Context, prefix string, fn func(cas.ObjectInfo) error) error {
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		if err := cas.ValidKey(p); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	full := b.prefix + prefix
	pg := s3.NewListObjectsV2Paginator(b.c, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &full})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return b.mapErr("list", prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key == nil {
				continue
			}
			oi := cas.ObjectInfo{Key: strings.TrimPrefix(*o.Key, b.prefix)}
			if o.Size != nil {
				oi.Size = *o.Size
			}
			if o.LastModified != nil {
				oi.ModTime = *o.LastModified
			}
			if err := fn(oi); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes key. S3 reports success for a missing key, and so does
// Delete.
func (b *Backend) Delete(ctx context.Context, key string) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &k}); err != nil && !isNotFound(err) {
		return b.mapErr("delete", key, err)
	}
	return nil
}

// ParseURL parses "s3://BUCKET[/PREFIX][#SNAPSHOT]" into the Bucket and
// Prefix of [Options] and the snapshot name after "#" ("" when absent).
func ParseURL(s string) (opts Options, snapshot string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return Options{}, "", fmt.Errorf("s3: location %q: %w", s, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return Options{}, "", fmt.Errorf("s3: location %q: want s3://BUCKET/PREFIX#SNAPSHOT", s)
	}
	opts = Options{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if opts.Prefix != "" {
		if err := cas.ValidKey(opts.Prefix); err != nil {
			return Options{}, "", fmt.Errorf("s3: location %q: prefix: %w", s, err)
		}
	}
	return opts, u.Fragment, nil
}
