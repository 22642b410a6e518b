package ebs_test

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"

	"strings"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/source"
)

// TestThrottled replicates a small volume into a fake that throttles puts
// per snapshot and requests per account: the retryer absorbs every
// RequestThrottledException and every block arrives.
func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		name string
		th   ebsfake.Throttle
		mode string
	}{
		{"per snapshot, standard", ebsfake.Throttle{PutPerSnapshot: 15, Burst: 1}, "standard"},
		{"per account, standard", ebsfake.Throttle{Account: 30, Burst: 1}, "standard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			co := fastClient
			co.MaxAttempts, co.MaxBackoff = 50, 20*time.Millisecond
			co.RetryMode = "standard"
			if tc.mode == "adaptive" {
				co.RetryMode = "adaptive"
			}
			r := newRegion(t, "us-east-1", ebsfake.Options{Throttle: tc.th}, co)
			g := blockdiff.Geometry{Size: 16 * ebs.BlockSize, BlockSize: ebs.BlockSize}
			vol := blockdifftest.Volume(12, g, 0, 0)
			_, snk, got := roundTrip(t, r, vol, fastSink(g.Size), replicate.Options{Concurrency: 8})
			if d := firstDiff(got, vol, ebs.BlockSize); d != -1 {
				t.Fatalf("read back: block %d differs", d)
			}
			st := r.srv.Stats()
			if st.Throttled == 0 {
				t.Errorf("the fake throttled nothing (stats %+v); the test does not exercise retries", st)
			}
			if info, _ := r.srv.Snapshot(snk.SnapshotID()); info.WrittenBlocks != 16 {
				t.Errorf("blocks put: got %d, want 16", info.WrittenBlocks)
			}
		})
	}
}

// TestServiceDown checks that a fake answering 503 to everything, and one
// that is gone, end in a clear error in bounded time.
func TestServiceDown(t *testing.T) {
	co := fastClient
	co.MaxAttempts, co.AttemptTimeout = 3, 2*time.Second
	g := blockdiff.Geometry{Size: 4 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(13, g, 0, 0)
	src, _ := source.NewMemory(vol, ebs.BlockSize)

	t.Run("all 503", func(t *testing.T) {
		r := newRegion(t, "us-east-1", ebsfake.Options{}, co)
		snk, err := ebs.NewSnapshot(r.ctx, r.c.EBS, r.c.EC2, fastSink(g.Size))
		if err != nil {
			t.Fatal(err)
		}
		defer snk.Close()
		r.srv.AddFault(ebsfake.Rule{Fault: ebsfake.FaultUnavailable})
		start := time.Now()
		_, err = replicate.Run(r.ctx, src, snk, replicate.Options{Concurrency: 2})
		if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), snk.SnapshotID()) {
			t.Errorf("Run against a 503 fake: got %v, want an error naming the snapshot and status 503", err)
		}
		var be *blockdiff.BlockError
		if !errors.As(err, &be) {
			t.Errorf("error %v is not a BlockError", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Run took %v, want a quick failure", d)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		r := newRegion(t, "us-east-1", ebsfake.Options{}, co)
		snk, err := ebs.NewSnapshot(r.ctx, r.c.EBS, r.c.EC2, fastSink(g.Size))
		if err != nil {
			t.Fatal(err)
		}
		defer snk.Close()
		r.hs.Close()
		start := time.Now()
		_, err = replicate.Run(r.ctx, src, snk, replicate.Options{Concurrency: 2})
		if err == nil || !strings.Contains(err.Error(), "PutSnapshotBlock") {
			t.Errorf("Run against a closed server: got %v, want a PutSnapshotBlock error", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Run took %v, want a quick failure", d)
		}
	})
}

// TestRetryer checks the EBS additions to the SDK's retry policy in both
// modes.
func TestRetryer(t *testing.T) {
	for _, mode := range []aws.RetryMode{aws.RetryModeStandard, aws.RetryModeAdaptive} {
		r := ebs.NewRetryer(ebs.ClientOptions{RetryMode: mode, MaxAttempts: 7})
		if got := r.MaxAttempts(); got != 7 {
			t.Errorf("%s: MaxAttempts: got %d, want 7", mode, got)
		}
		for _, tc := range []struct {
			err  error
			want bool
		}{
			{&smithy.GenericAPIError{Code: "ConcurrentLimitExceededException", Message: "too many pending"}, true},
			{&types.ValidationException{Message: aws.String("Failed to read block data"), Reason: types.ValidationExceptionReasonInvalidParameterValue}, true},
			{&types.ValidationException{Message: aws.String("bad token"), Reason: types.ValidationExceptionReasonInvalidBlockToken}, false},
			{&types.RequestThrottledException{Message: aws.String("slow down")}, true},
			{&types.ResourceNotFoundException{Message: aws.String("gone")}, false},
		} {
			if got := r.IsErrorRetryable(tc.err); got != tc.want {
				t.Errorf("%s: IsErrorRetryable(%v): got %v, want %v", mode, tc.err, got, tc.want)
			}
		}
	}
	if _, err := ebs.NewClientsFromConfig(aws.Config{Region: "us-east-1"}, ebs.ClientOptions{RetryMode: "fancy"}); err == nil {
		t.Error("NewClientsFromConfig with an unknown retry mode: got nil error")
	}
	if _, err := ebs.NewClientsFromConfig(aws.Config{}, ebs.ClientOptions{}); err == nil {
		t.Error("NewClientsFromConfig without a region: got nil error")
	}
}

// TestTransientFaults injects one of each retryable failure the EBS
// documentation names; the copy finishes without surfacing any.
func TestTransientFaults(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{StrictComplete: true}, fastClient)
	readFail := ebsfake.Fault{Status: 400, Type: ebsfake.ErrValidation, Message: "Failed to read block data", Reason: "INVALID_PARAMETER_VALUE"}
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpStartSnapshot, Nth: 1, Fault: ebsfake.Fault{Status: 400, Type: "ConcurrentLimitExceededException", Message: "too many pending snapshots"}})
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, Nth: 1, Fault: ebsfake.FaultInternal})
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, Nth: 2, Fault: readFail})
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, Nth: 3, Fault: ebsfake.FaultDrop})
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpGetSnapshotBlock, Nth: 1, Fault: ebsfake.FaultThrottle})
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpCompleteSnapshot, Nth: 1, Fault: ebsfake.FaultUnavailable})
	g := blockdiff.Geometry{Size: 8 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(14, g, 0, 0)
	_, snk, got := roundTrip(t, r, vol, fastSink(g.Size), replicate.Options{Concurrency: 1})
	if d := firstDiff(got, vol, ebs.BlockSize); d != -1 {
		t.Fatalf("read back: block %d differs", d)
	}
	if st := r.srv.Stats(); st.Faults != 6 {
		t.Errorf("faults served: got %d, want 6", st.Faults)
	}
	if n := len(r.srv.Snapshots()); n != 1 {
		t.Errorf("snapshots: got %d, want 1 (the retried StartSnapshot kept its client token)", n)
	}
	if info, _ := r.srv.Snapshot(snk.SnapshotID()); info.Status != ebsfake.StatusCompleted {
		t.Errorf("snapshot: got %s (%s), want completed", info.Status, info.StatusMessage)
	}
}

// TestHungService: a fake that never answers in time fails each attempt
// after AttemptTimeout, and the run ends with an error soon after.
func TestHungService(t *testing.T) {
	co := fastClient
	co.MaxAttempts, co.AttemptTimeout = 2, 150*time.Millisecond
	r := newRegion(t, "us-east-1", ebsfake.Options{}, co)
	g := blockdiff.Geometry{Size: 2 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	src, _ := source.NewMemory(blockdifftest.Volume(15, g, 0, 0), ebs.BlockSize)
	snk, err := ebs.NewSnapshot(r.ctx, r.c.EBS, nil, fastSink(g.Size))
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	r.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, Fault: ebsfake.Fault{Delay: time.Second}})
	start := time.Now()
	_, err = replicate.Run(r.ctx, src, snk, replicate.Options{Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "PutSnapshotBlock") {
		t.Errorf("Run against a hung fake: got %v, want a PutSnapshotBlock error", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("Run took %v, want about 2 attempts of 150 ms", d)
	}
}
