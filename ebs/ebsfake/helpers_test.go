package ebsfake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// fakeClock is a manual clock for Options.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1700000000, 123e6)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one fake on 127.0.0.1 with a Go SDK client.
type env struct {
	t      *testing.T
	srv    *ebsfake.Server
	url    string
	clock  *fakeClock
	client *ebs.Client
	ctx    context.Context
}

// newEnv starts a fake. A nil clock in opts gets a fake clock. The client uses the SDK's
// standard retryer with a fixed 1 ms backoff that also advances the fake clock by 1 s,
// so throttled retries are deterministic and fast.
func newEnv(t *testing.T, opts ebsfake.Options) *env {
	t.Helper()
	clk := newClock()
	if opts.Clock == nil {
		opts.Clock = clk.Now
	}
	srv, err := ebsfake.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{t: t, srv: srv, url: hs.URL, clock: clk, ctx: context.Background()}
	e.client = newClient(hs.URL, clk)
	return e
}

func newClient(url string, clk *fakeClock) *ebs.Client {
	return ebs.New(ebs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
				clk.Advance(time.Second)
				return time.Millisecond, nil
			})
		}),
	})
}

func fill(b byte) []byte { return bytes.Repeat([]byte{b}, ebsfake.BlockSize) }

func sum64(data []byte) string {
	s := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(s[:])
}

// linear computes the §5.8 LINEAR checksum over blocks by index.
func linear(blocks map[int32][]byte) string {
	idx := make([]int, 0, len(blocks))
	for i := range blocks {
		idx = append(idx, int(i))
	}
	sort.Ints(idx)
	h := sha256.New()
	for _, i := range idx {
		s := sha256.Sum256(blocks[int32(i)])
		h.Write(s[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func (e *env) start(in *ebs.StartSnapshotInput) string {
	e.t.Helper()
	if in == nil {
		in = &ebs.StartSnapshotInput{}
	}
	if in.VolumeSize == nil {
		in.VolumeSize = aws.Int64(1)
	}
	out, err := e.client.StartSnapshot(e.ctx, in)
	if err != nil {
		e.t.Fatalf("StartSnapshot: %v", err)
	}
	return *out.SnapshotId
}

func (e *env) put(id string, idx int32, data []byte) error {
	_, err := e.client.PutSnapshotBlock(e.ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId: aws.String(id), BlockIndex: aws.Int32(idx), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(int32(len(data))), Checksum: aws.String(sum64(data)),
		ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	return err
}

func (e *env) mustPut(id string, idx int32, data []byte) {
	e.t.Helper()
	if err := e.put(id, idx, data); err != nil {
		e.t.Fatalf("PutSnapshotBlock(%s, %d): %v", id, idx, err)
	}
}

func (e *env) complete(id string, blocks map[int32][]byte) error {
	_, err := e.client.CompleteSnapshot(e.ctx, &ebs.CompleteSnapshotInput{
		SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(int32(len(blocks))),
		Checksum: aws.String(linear(blocks)), ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear,
	})
	return err
}

// snapshotWith starts a snapshot, writes blocks and completes it.
func (e *env) snapshotWith(parent string, blocks map[int32][]byte) string {
	e.t.Helper()
	in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)}
	if parent != "" {
		in.ParentSnapshotId = aws.String(parent)
	}
	id := e.start(in)
	for i, d := range blocks {
		e.mustPut(id, i, d)
	}
	if err := e.complete(id, blocks); err != nil {
		e.t.Fatalf("CompleteSnapshot(%s): %v", id, err)
	}
	e.wantStatus(id, ebsfake.StatusCompleted)
	return id
}

func (e *env) wantStatus(id string, want ebsfake.Status) {
	e.t.Helper()
	info, ok := e.srv.Snapshot(id)
	if !ok {
		e.t.Fatalf("Snapshot(%s) not found", id)
	}
	if info.Status != want {
		e.t.Fatalf("status of %s: got %s (%s), want %s", id, info.Status, info.StatusMessage, want)
	}
}

// listAll pages ListSnapshotBlocks to the end.
func (e *env) listAll(id string) []types.Block {
	e.t.Helper()
	var out []types.Block
	p := ebs.NewListSnapshotBlocksPaginator(e.client, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(id)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatalf("ListSnapshotBlocks(%s): %v", id, err)
		}
		out = append(out, page.Blocks...)
	}
	return out
}

func indexes(bs []types.Block) []int32 {
	out := make([]int32, len(bs))
	for i, b := range bs {
		out[i] = *b.BlockIndex
	}
	return out
}

func (e *env) get(id string, idx int32, token string) ([]byte, *ebs.GetSnapshotBlockOutput, error) {
	out, err := e.client.GetSnapshotBlock(e.ctx, &ebs.GetSnapshotBlockInput{
		SnapshotId: aws.String(id), BlockIndex: aws.Int32(idx), BlockToken: aws.String(token)})
	if err != nil {
		return nil, nil, err
	}
	defer out.BlockData.Close()
	data, err := io.ReadAll(out.BlockData)
	return data, out, err
}

func tokenFor(bs []types.Block, idx int32) string {
	for _, b := range bs {
		if *b.BlockIndex == idx {
			return *b.BlockToken
		}
	}
	return ""
}

// raw sends a hand-made request and returns the response with its body read.
func (e *env) raw(method, path string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// wantAPIError checks err is the API error typ (via errors.As on the SDK's type) and, when
// reason is not "", its Reason.
func wantAPIError(t *testing.T, err error, typ, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s (%s)", typ, reason)
	}
	var got, gotReason string
	var (
		ve *types.ValidationException
		rn *types.ResourceNotFoundException
		cf *types.ConflictException
		rt *types.RequestThrottledException
		cl *types.ConcurrentLimitExceededException
		is *types.InternalServerException
	)
	switch {
	case errors.As(err, &ve):
		got, gotReason = "ValidationException", string(ve.Reason)
	case errors.As(err, &rn):
		got, gotReason = "ResourceNotFoundException", string(rn.Reason)
	case errors.As(err, &cf):
		got = "ConflictException"
	case errors.As(err, &rt):
		got, gotReason = "RequestThrottledException", string(rt.Reason)
	case errors.As(err, &cl):
		got = "ConcurrentLimitExceededException"
	case errors.As(err, &is):
		got = "InternalServerException"
	default:
		t.Fatalf("got error %v (%T), want %s", err, err, typ)
	}
	if got != typ || (reason != "" && gotReason != reason) {
		t.Fatalf("got %s (Reason %q), want %s (Reason %q); err: %v", got, gotReason, typ, reason, err)
	}
}

// wantRawError checks a raw error response against §4.
func wantRawError(t *testing.T, resp *http.Response, body []byte, status int, typ, reason string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status: got %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("X-Amzn-Errortype"); got != typ {
		t.Fatalf("x-amzn-ErrorType: got %q, want %q", got, typ)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type: got %q, want application/json", got)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if msg, _ := m["Message"].(string); msg == "" || len(msg) > 256 {
		t.Fatalf("Message: got %q, want 1 to 256 characters", msg)
	}
	r, has := m["Reason"]
	if reason == "" && has {
		t.Fatalf("Reason: got %v, want none", r)
	}
	if reason != "" && r != reason {
		t.Fatalf("Reason: got %v, want %s", r, reason)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// jsonField returns the string at a dotted path ("Blocks.0.BlockToken") of a JSON body.
func jsonField(body []byte, path string) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	s, _ := v.(string)
	return s
}
