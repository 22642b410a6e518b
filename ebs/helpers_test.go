package ebs_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// clock is a settable clock for ebsfake.Options.Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// region is one ebsfake server on 127.0.0.1 with real SDK clients.
type region struct {
	t   testing.TB
	srv *ebsfake.Server
	hs  *httptest.Server
	c   *ebs.Clients
	ctx context.Context
}

// fastClient are client options that keep retries quick in tests.
var fastClient = ebs.ClientOptions{MaxAttempts: 10, MaxBackoff: 5 * time.Millisecond, AttemptTimeout: 10 * time.Second}

func newRegion(t testing.TB, name string, fo ebsfake.Options, co ebs.ClientOptions) *region {
	t.Helper()
	fo.Region = name
	srv, err := ebsfake.New(fo)
	if err != nil {
		t.Fatalf("ebsfake.New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	co.Region = name
	co.EBSEndpoint, co.EC2Endpoint, co.GatewayEndpoint = hs.URL, hs.URL, hs.URL
	c, err := ebs.NewClientsFromConfig(aws.Config{
		Region:      name,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}, co)
	if err != nil {
		t.Fatalf("NewClientsFromConfig: %v", err)
	}
	return &region{t: t, srv: srv, hs: hs, c: c, ctx: context.Background()}
}

// seed makes a completed snapshot of vol (a multiple of 512 KiB, padded
// otherwise) on volume size gib, writing only the EBS blocks that are not
// all zero plus the ones listed in zeros, with parent as its parent.
func (r *region) seed(gib int64, parent string, vol []byte, writeZeros bool) string {
	r.t.Helper()
	in := &awsebs.StartSnapshotInput{VolumeSize: aws.Int64(gib)}
	if parent != "" {
		in.ParentSnapshotId = aws.String(parent)
	}
	out, err := r.c.EBS.StartSnapshot(r.ctx, in)
	if err != nil {
		r.t.Fatalf("StartSnapshot: %v", err)
	}
	id := aws.ToString(out.SnapshotId)
	zero := make([]byte, ebs.BlockSize)
	for off := 0; off < len(vol); off += ebs.BlockSize {
		b := make([]byte, ebs.BlockSize)
		copy(b, vol[off:])
		if !writeZeros && bytes.Equal(b, zero) {
			continue
		}
		if err := r.srv.WriteBlock(id, int32(off/ebs.BlockSize), b); err != nil {
			r.t.Fatalf("seed WriteBlock: %v", err)
		}
	}
	if err := r.srv.SetState(id, ebsfake.StatusCompleted, ""); err != nil {
		r.t.Fatalf("SetState: %v", err)
	}
	return id
}

// readAll reads every block of src.
func readAll(t *testing.T, src blockdiff.Source) []byte {
	t.Helper()
	g := src.Geometry()
	out := make([]byte, g.Size)
	for i := int64(0); i < g.Blocks(); i++ {
		if _, err := src.ReadBlock(context.Background(), i, out[g.Offset(i):]); err != nil {
			t.Fatalf("ReadBlock(%d): %v", i, err)
		}
	}
	return out
}

// firstDiff returns the first differing block of a and b (of blockSize), or -1.
func firstDiff(a, b []byte, blockSize int) int {
	if len(a) != len(b) {
		return -2
	}
	for off := 0; off < len(a); off += blockSize {
		end := min(off+blockSize, len(a))
		if !bytes.Equal(a[off:end], b[off:end]) {
			return off / blockSize
		}
	}
	return -1
}

// fastWait are sink options that poll for completion quickly.
func fastSink(size int64) ebs.SinkOptions {
	return ebs.SinkOptions{Size: size, WaitTimeout: 20 * time.Second, WaitMinDelay: 5 * time.Millisecond, WaitMaxDelay: 20 * time.Millisecond}
}
