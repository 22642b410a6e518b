package ebsfake_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ebsfake.Options
		want string
	}{
		{"owner", ebsfake.Options{OwnerID: "12"}, "12-digit"},
		{"pending", ebsfake.Options{MaxPendingSnapshots: -1}, "MaxPendingSnapshots"},
		{"delay", ebsfake.Options{CompletionDelay: -time.Second}, "negative"},
		{"throttle", ebsfake.Options{Throttle: ebsfake.Throttle{Account: -1}}, "negative"},
		{"datadir", ebsfake.Options{DataDir: "/nonexistent/ebsfake"}, "DataDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ebsfake.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ebsfake: ") {
				t.Fatalf("got %v, want an ebsfake: error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestFaultsRetried injects each fault kind once into PutSnapshotBlock; the SDK's standard
// retryer recovers from all of them and the block is stored once.
func TestFaultsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault ebsfake.Fault
	}{
		{"500", ebsfake.FaultInternal},
		{"503", ebsfake.FaultUnavailable},
		{"503-empty-type", ebsfake.Fault{Status: 503, Type: "ServiceUnavailable"}},
		{"throttle", ebsfake.FaultThrottle},
		{"drop", ebsfake.FaultDrop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ebsfake.Options{})
			id := e.start(nil)
			e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, SnapshotID: id, Nth: 1, Fault: tc.fault})
			e.mustPut(id, 1, fill(1))
			st := e.srv.Stats()
			if st.Faults != 1 || st.BlocksStored != 1 || st.Requests[ebsfake.OpPutSnapshotBlock] < 2 {
				t.Errorf("got %d faults, %d stored, %d requests; want 1, 1, >= 2", st.Faults, st.BlocksStored, st.Requests[ebsfake.OpPutSnapshotBlock])
			}
		})
	}
}

func TestDropClosesConnection(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpStartSnapshot, Times: 1, Fault: ebsfake.FaultDrop})
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	// POST is not retried by net/http itself, so the drop surfaces.
	resp, err := (&http.Client{Transport: tr}).Post(e.url+"/snapshots", "application/json", strings.NewReader(`{"VolumeSize":1}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want a transport error", resp.StatusCode)
	}
	if n := len(e.srv.Snapshots()); n != 0 {
		t.Errorf("snapshots: got %d, want 0", n)
	}
	e.start(nil) // the rule fired once
}

func TestInjectHookAndTimes(t *testing.T) {
	var calls []ebsfake.Call
	var e *env
	e = newEnv(t, ebsfake.Options{Inject: func(c ebsfake.Call) *ebsfake.Fault {
		calls = append(calls, c)
		if c.Op == ebsfake.OpCompleteSnapshot && c.N == 1 {
			return &ebsfake.Fault{Type: ebsfake.ErrAccessDenied, Reason: "UNAUTHORIZED_ACCOUNT", Message: "no"}
		}
		return nil
	}})
	id := e.start(nil)
	err := e.complete(id, nil)
	wantStatusErr(t, err, 403)
	if err := e.complete(id, nil); err != nil {
		t.Fatalf("second complete: %v", err)
	}
	if len(calls) != 3 || calls[1].SnapshotID != id || calls[2].N != 2 {
		t.Errorf("calls: got %+v", calls)
	}
	// Times bounds a rule without Nth.
	e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpStartSnapshot, Times: 2, Fault: ebsfake.FaultInternal})
	e.start(nil) // two 500s, then success on the third attempt
	if got := e.srv.Stats().Errors[ebsfake.ErrInternalServer]; got != 2 {
		t.Errorf("InternalServerException responses: got %d, want 2", got)
	}
	e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpStartSnapshot, Fault: ebsfake.FaultInternal})
	_, err = e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	wantAPIError(t, err, "InternalServerException", "")
	e.srv.ClearFaults()
	e.start(nil)
}

func wantStatusErr(t *testing.T, err error, status int) {
	t.Helper()
	if got := httpStatus(err); got != status {
		t.Fatalf("got %v (status %d), want status %d", err, got, status)
	}
}

func TestAccountThrottle(t *testing.T) {
	e := newEnv(t, ebsfake.Options{Throttle: ebsfake.Throttle{Account: 2}})
	resp1, _ := e.raw("POST", "/snapshots", nil, strings.NewReader(`{"VolumeSize":1}`))
	resp2, _ := e.raw("POST", "/snapshots", nil, strings.NewReader(`{"VolumeSize":1}`))
	resp3, body := e.raw("POST", "/snapshots", nil, strings.NewReader(`{"VolumeSize":1}`))
	if resp1.StatusCode != 201 || resp2.StatusCode != 201 {
		t.Fatalf("burst of 2: got %d %d, want 201 201", resp1.StatusCode, resp2.StatusCode)
	}
	wantRawError(t, resp3, body, 400, "RequestThrottledException", "ACCOUNT_THROTTLED")
	e.clock.Advance(500 * time.Millisecond)
	if resp, _ := e.raw("POST", "/snapshots", nil, strings.NewReader(`{"VolumeSize":1}`)); resp.StatusCode != 201 {
		t.Errorf("after refill: got %d, want 201", resp.StatusCode)
	}
	// The SDK retries account throttling too (its backoff advances the fake clock).
	e.start(nil)
}

func TestLatency(t *testing.T) {
	e := newEnv(t, ebsfake.Options{Latency: 50 * time.Millisecond})
	begin := time.Now()
	e.start(nil)
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("StartSnapshot took %v, want at least the 50ms latency", d)
	}
}

func TestConcurrentPutSameIndex(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	id := e.start(nil)
	data := fill(7)
	// A request that stalls mid-body holds the index; a second put to it is refused.
	pr, pw := io.Pipe()
	done := make(chan *http.Response)
	go func() {
		req, _ := http.NewRequest("PUT", e.url+"/snapshots/"+id+"/blocks/4", pr)
		req.Header.Set("x-amz-Data-Length", "524288")
		req.Header.Set("x-amz-Checksum", sum64(data))
		req.Header.Set("x-amz-Checksum-Algorithm", "SHA256")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		resp.Body.Close()
		done <- resp
	}()
	_, _ = pw.Write(data[:1000])
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = e.put(id, 4, data); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantAPIError(t, err, "ValidationException", "CONFLICTING_BLOCK_UPDATE")
	_, _ = pw.Write(data[1000:])
	_ = pw.Close()
	if resp := <-done; resp == nil || resp.StatusCode != 201 {
		t.Fatalf("stalled put: got %v, want 201", resp)
	}
	if got, _, _ := e.srv.ReadBlock(id, 4); !bytes.Equal(got, data) {
		t.Error("block 4 not stored")
	}
}

// TestRegions runs two fakes at once: ids differ, state is separate.
func TestRegions(t *testing.T) {
	east := newEnv(t, ebsfake.Options{Region: "us-east-1"})
	west := newEnv(t, ebsfake.Options{Region: "us-west-2"})
	a, b := east.start(nil), west.start(nil)
	if a == b {
		t.Fatalf("both regions made %s", a)
	}
	if _, ok := west.srv.Snapshot(a); ok {
		t.Errorf("west knows east's snapshot %s", a)
	}
	if _, ok := east.srv.Snapshot(a); !ok {
		t.Errorf("east lost %s", a)
	}
}

func TestSetState(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	id := e.start(nil)
	e.mustPut(id, 2, fill(2))
	if err := e.srv.SetState(id, ebsfake.StatusError, "forced"); err != nil {
		t.Fatal(err)
	}
	info, _ := e.srv.Snapshot(id)
	if info.Status != ebsfake.StatusError || info.StatusMessage != "forced" {
		t.Errorf("got %s %q, want error forced", info.Status, info.StatusMessage)
	}
	wantAPIError(t, e.put(id, 3, fill(3)), "ValidationException", "INVALID_SNAPSHOT_ID")
	if err := e.srv.SetState(id, ebsfake.StatusCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if got := indexes(e.listAll(id)); len(got) != 1 || got[0] != 2 {
		t.Errorf("list after forced completion: got %v, want [2]", got)
	}
	if err := e.srv.SetState("snap-00000000000000000", ebsfake.StatusError, ""); !errors.Is(err, ebsfake.ErrNotFound) {
		t.Errorf("unknown id: got %v, want ErrNotFound", err)
	}
	if err := e.srv.SetState(id, "bogus", ""); err == nil {
		t.Error("bogus status accepted")
	}
}

// TestEncryption covers the §5.9 rules the fake models.
func TestEncryption(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	enc, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(enc.KmsKeyArn) == "" {
		t.Error("encrypted snapshot without KmsKeyArn: want the default key echoed")
	}
	id := *enc.SnapshotId
	if err := e.complete(id, nil); err != nil {
		t.Fatal(err)
	}
	child, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(child.KmsKeyArn) != aws.ToString(enc.KmsKeyArn) {
		t.Errorf("child key: got %q, want the parent's %q", aws.ToString(child.KmsKeyArn), aws.ToString(enc.KmsKeyArn))
	}
	ebd := newEnv(t, ebsfake.Options{EncryptionByDefault: true})
	s, err := ebd.client.StartSnapshot(ebd.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil || aws.ToString(s.KmsKeyArn) == "" {
		t.Errorf("encryption by default: got %v %v, want an encrypted snapshot", s, err)
	}
}
