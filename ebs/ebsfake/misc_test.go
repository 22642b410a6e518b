package ebsfake_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

func TestStartValidationReasons(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	parent := e.snapshotWith("", nil)
	tag := func(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }
	many := make([]types.Tag, 51)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(strings.Repeat("k", i+1)), Value: aws.String("v")}
	}
	for _, tc := range []struct {
		name   string
		in     ebs.StartSnapshotInput
		reason string
	}{
		{"aws-prefix", ebs.StartSnapshotInput{Tags: tag("aws:x", "v")}, "INVALID_TAG"},
		{"long-key", ebs.StartSnapshotInput{Tags: tag(strings.Repeat("k", 128), "v")}, "INVALID_TAG"},
		{"long-value", ebs.StartSnapshotInput{Tags: tag("k", strings.Repeat("v", 256))}, "INVALID_TAG"},
		{"51-tags", ebs.StartSnapshotInput{Tags: many}, "INVALID_TAG"},
		{"kms-without-encrypted", ebs.StartSnapshotInput{KmsKeyArn: aws.String("arn:aws:kms:us-east-1:123456789012:key/x")}, "INVALID_PARAMETER_VALUE"},
		{"bad-kms-arn", ebs.StartSnapshotInput{Encrypted: aws.Bool(true), KmsKeyArn: aws.String("not-an-arn")}, "INVALID_PARAMETER_VALUE"},
		{"parent-size", ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), ParentSnapshotId: aws.String(parent)}, "INVALID_VOLUME_SIZE"},
		{"bad-parent-id", ebs.StartSnapshotInput{ParentSnapshotId: aws.String("vol-1")}, "INVALID_SNAPSHOT_ID"},
		{"client-token-space", ebs.StartSnapshotInput{ClientToken: aws.String("a b")}, "INVALID_PARAMETER_VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.VolumeSize == nil {
				tc.in.VolumeSize = aws.Int64(1)
			}
			_, err := e.client.StartSnapshot(e.ctx, &tc.in)
			wantAPIError(t, err, "ValidationException", tc.reason)
		})
	}
	pending := e.start(nil)
	_, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(pending)})
	wantAPIError(t, err, "ValidationException", "INVALID_SNAPSHOT_ID")
}

func TestChangedBlocksWithoutFirst(t *testing.T) {
	for _, strict := range []bool{false, true} {
		e := newEnv(t, ebsfake.Options{StrictChangedBlocks: strict})
		p := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		c := e.snapshotWith(p, map[int32][]byte{3: fill(3)})
		out, err := e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{SecondSnapshotId: aws.String(c)})
		if strict {
			wantAPIError(t, err, "ValidationException", "INVALID_PARAMETER_VALUE")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var got []int32
		for _, b := range out.ChangedBlocks {
			if b.FirstBlockToken != nil || b.SecondBlockToken == nil {
				t.Errorf("block %d: want only SecondBlockToken", *b.BlockIndex)
			}
			got = append(got, *b.BlockIndex)
		}
		if len(got) != 2 || got[0] != 0 || got[1] != 3 {
			t.Errorf("without firstSnapshotId: got %v, want every block of the second snapshot [0 3]", got)
		}
	}
}

// TestRepeatedComplete: a retried CompleteSnapshot reports the current status.
func TestRepeatedComplete(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	id := e.snapshotWith("", map[int32][]byte{1: fill(1)})
	out, err := e.client.CompleteSnapshot(e.ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(1)})
	if err != nil || out.Status != types.StatusCompleted {
		t.Fatalf("second complete: got %v %v, want completed", out, err)
	}
}
