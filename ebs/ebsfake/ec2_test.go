package ebsfake_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/storagegateway"
	"github.com/aws/smithy-go"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

func ec2Client(url string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
}

func TestEC2CreateAndDescribe(t *testing.T) {
	e := newEnv(t, ebsfake.Options{CompletionDelay: time.Minute})
	base := e.start(nil)
	e.mustPut(base, 0, fill(1))
	if err := e.complete(base, map[int32][]byte{0: fill(1)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.wantStatus(base, ebsfake.StatusCompleted)
	for _, v := range []ebsfake.Volume{
		{ID: "vol-0000000000000root", SizeGiB: 1, InstanceID: "i-1", Root: true},
		{ID: "vol-0000000000000data", SizeGiB: 1, InstanceID: "i-1", SnapshotID: base},
		{ID: "vol-0000000000000skip", SizeGiB: 4, InstanceID: "i-1"},
		{ID: "vol-00000000000single", SizeGiB: 2},
	} {
		if err := e.srv.AddVolume(v); err != nil {
			t.Fatal(err)
		}
	}
	c := ec2Client(e.url)
	one, err := c.CreateSnapshot(e.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-00000000000single"), Description: aws.String("one"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if one.State != ec2types.SnapshotStatePending || aws.ToInt32(one.VolumeSize) != 2 || aws.ToString(one.Description) != "one" || len(one.Tags) != 1 || !snapIDRe.MatchString(aws.ToString(one.SnapshotId)) {
		t.Errorf("CreateSnapshot: got %+v", one)
	}
	multi, err := c.CreateSnapshots(e.ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{
		InstanceId: aws.String("i-1"), ExcludeBootVolume: aws.Bool(true), ExcludeDataVolumeIds: []string{"vol-0000000000000skip"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(multi.Snapshots) != 1 || aws.ToString(multi.Snapshots[0].VolumeId) != "vol-0000000000000data" || multi.Snapshots[0].State != ec2types.SnapshotStatePending {
		t.Fatalf("CreateSnapshots: got %+v", multi.Snapshots)
	}
	fromData := aws.ToString(multi.Snapshots[0].SnapshotId)
	if info, _ := e.srv.Snapshot(fromData); info.ParentID != base {
		t.Errorf("snapshot of a restored volume: parent %q, want %q", info.ParentID, base)
	}

	desc, err := c.DescribeSnapshots(e.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{fromData, aws.ToString(one.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Snapshots) != 2 || desc.Snapshots[0].State != ec2types.SnapshotStatePending || aws.ToString(desc.Snapshots[1].OwnerId) != "111122223333" {
		t.Errorf("DescribeSnapshots: got %+v", desc.Snapshots)
	}
	e.clock.Advance(time.Minute)
	desc, err = c.DescribeSnapshots(e.ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("status"), Values: []string{"completed"}}, {Name: aws.String("tag:k"), Values: []string{"v"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Snapshots) != 1 || aws.ToString(desc.Snapshots[0].SnapshotId) != aws.ToString(one.SnapshotId) || aws.ToString(desc.Snapshots[0].Progress) != "100%" {
		t.Errorf("filtered DescribeSnapshots: got %+v", desc.Snapshots)
	}
	// Direct-API snapshots show up too, and the lineage reads through ListSnapshotBlocks.
	if got := indexes(e.listAll(fromData)); !slices.Equal(got, []int32{0}) {
		t.Errorf("blocks of the EC2 snapshot of a restored volume: got %v, want [0]", got)
	}
	var n int
	p := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Snapshots)
	}
	if n != 3 {
		t.Errorf("paginated DescribeSnapshots: got %d snapshots, want 3", n)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"unknown-volume", func() error {
			_, err := c.CreateSnapshot(e.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-404")})
			return err
		}, "InvalidVolume.NotFound"},
		{"unknown-snapshot", func() error {
			_, err := c.DescribeSnapshots(e.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}})
			return err
		}, "InvalidSnapshot.NotFound"},
		{"dry-run", func() error {
			_, err := c.CreateSnapshot(e.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-00000000000single"), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		{"exclude-root", func() error {
			_, err := c.CreateSnapshots(e.ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{
				InstanceId: aws.String("i-1"), ExcludeDataVolumeIds: []string{"vol-0000000000000root"}}})
			return err
		}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ae smithy.APIError
			if err := tc.call(); !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("got %v, want API error %s", err, tc.code)
			}
		})
	}
}

func TestSnapshotCompletedWaiter(t *testing.T) {
	srv, err := ebsfake.New(ebsfake.Options{CompletionDelay: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	if err := srv.AddVolume(ebsfake.Volume{ID: "vol-1", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	c := ec2Client(hs.URL)
	ctx := context.Background()
	a, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-1")})
	if err != nil {
		t.Fatal(err)
	}
	w := ec2.NewSnapshotCompletedWaiter(c, func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 50*time.Millisecond
	})
	if err := w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*a.SnapshotId}}, 10*time.Second); err != nil {
		t.Fatalf("wait for completed: %v", err)
	}
	if info, _ := srv.Snapshot(*a.SnapshotId); info.Status != ebsfake.StatusCompleted {
		t.Fatalf("status: got %s, want completed", info.Status)
	}
	// A snapshot written through the direct APIs is followed the same way after
	// CompleteSnapshot answers pending.
	direct := newClient(hs.URL, newClock())
	st, err := direct.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*st.SnapshotId}}, 10*time.Second); err != nil {
		t.Fatalf("wait for the direct-API snapshot: %v", err)
	}
	b, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetState(*b.SnapshotId, ebsfake.StatusError, "forced"); err != nil {
		t.Fatal(err)
	}
	err = w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*b.SnapshotId}}, 10*time.Second)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "failure") {
		t.Fatalf("wait on an error snapshot: got %v, want a waiter failure", err)
	}
}

func TestStorageGatewayCreateSnapshot(t *testing.T) {
	e := newEnv(t, ebsfake.Options{})
	if err := e.srv.AddVolume(ebsfake.Volume{ID: "vol-1122aabb", SizeGiB: 3}); err != nil {
		t.Fatal(err)
	}
	c := storagegateway.New(storagegateway.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.url),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	arn := "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B/volume/vol-1122aabb"
	out, err := c.CreateSnapshot(e.ctx, &storagegateway.CreateSnapshotInput{VolumeARN: aws.String(arn), SnapshotDescription: aws.String("gw")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VolumeARN) != arn || !snapIDRe.MatchString(aws.ToString(out.SnapshotId)) {
		t.Fatalf("got %+v", out)
	}
	info, _ := e.srv.Snapshot(*out.SnapshotId)
	if info.VolumeID != "vol-1122aabb" || info.VolumeSize != 3 || info.Description != "gw" || info.Status != ebsfake.StatusCompleted {
		t.Errorf("snapshot: got %+v", info)
	}
	_, err = c.CreateSnapshot(e.ctx, &storagegateway.CreateSnapshotInput{VolumeARN: aws.String(strings.Replace(arn, "1122aabb", "99999999", 1)), SnapshotDescription: aws.String("gw")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidGatewayRequestException" {
		t.Fatalf("unknown volume: got %v, want InvalidGatewayRequestException", err)
	}
}
