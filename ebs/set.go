package ebs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/storagegateway"
	sgwtypes "github.com/aws/aws-sdk-go-v2/service/storagegateway/types"
)

// SetOptions configure [SnapshotInstance] and [SnapshotGatewayVolume].
// The zero value works.
type SetOptions struct {
	// Description is set on every snapshot. Default "blockferry" (Storage
	// Gateway requires one).
	Description string
	// Tags are set on every snapshot.
	Tags map[string]string
	// ExcludeBootVolume leaves the instance's root volume out.
	ExcludeBootVolume bool
	// ExcludeVolumeIDs leaves these data volumes out (at most 40).
	ExcludeVolumeIDs []string
	// CopyTagsFromVolume copies each volume's tags to its snapshot.
	CopyTagsFromVolume bool
	// Wait bounds the wait for every snapshot to complete; see
	// [WaitOptions] for the defaults.
	Wait WaitOptions
	// RequestTimeout bounds one API operation, retries included. Default
	// [DefaultRequestTimeout] (10 min).
	RequestTimeout time.Duration
}

// Set is a crash-consistent group of snapshots taken at one moment (all
// volumes of an instance through EC2 CreateSnapshots, or a Storage Gateway
// volume), with the progress of its replication. It encodes to the set
// manifest as JSON.
type Set struct {
	// Kind is "instance" or "gateway-volume".
	Kind string `json:"kind"`
	// Source is the instance id or the gateway volume ARN.
	Source string `json:"source"`
	// Created is when the snapshots were requested.
	Created time.Time `json:"created"`
	// Volumes lists one entry per volume, by volume id.
	Volumes []SetVolume `json:"volumes"`
	// Replicated reports whether every volume was replicated; a set is
	// never partly replicated as a whole.
	Replicated bool `json:"replicated"`
}

// SetVolume is one volume of a [Set].
type SetVolume struct {
	VolumeID         string `json:"volume_id"`
	SnapshotID       string `json:"source_snapshot_id"`
	SizeGiB          int64  `json:"size_gib"`
	State            string `json:"state"` // of the source snapshot: completed once the set is taken
	TargetSnapshotID string `json:"target_snapshot_id,omitempty"`
	Replicated       bool   `json:"replicated"`
	Error            string `json:"error,omitempty"` // the last replication failure
}

func (o SetOptions) withDefaults() SetOptions {
	if o.Description == "" {
		o.Description = "blockferry"
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	return o
}

func (o SetOptions) tags() (ec2t []ec2types.Tag, sgw []sgwtypes.Tag) {
	keys := make([]string, 0, len(o.Tags))
	for k := range o.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ec2t = append(ec2t, ec2types.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
		sgw = append(sgw, sgwtypes.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
	}
	return ec2t, sgw
}

// SnapshotInstance snapshots the volumes of instanceID at one moment with
// EC2 CreateSnapshots (crash-consistent across the volumes) and waits until
// every snapshot is completed. It fails, naming the snapshot, if any ends
// in error.
func SnapshotInstance(ctx context.Context, api EC2API, instanceID string, opts SetOptions) (*Set, error) {
	if api == nil || instanceID == "" {
		return nil, errors.New("ebs: snapshot instance: need an EC2 client and an instance id")
	}
	opts = opts.withDefaults()
	in := &ec2.CreateSnapshotsInput{
		InstanceSpecification: &ec2types.InstanceSpecification{
			InstanceId:           aws.String(instanceID),
			ExcludeBootVolume:    aws.Bool(opts.ExcludeBootVolume),
			ExcludeDataVolumeIds: opts.ExcludeVolumeIDs,
		},
		Description: aws.String(opts.Description),
	}
	if t, _ := opts.tags(); len(t) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: t}}
	}
	if opts.CopyTagsFromVolume {
		in.CopyTagsFromSource = ec2types.CopyTagsFromSourceVolume
	}
	set := &Set{Kind: "instance", Source: instanceID, Created: time.Now().UTC()}
	cctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
	out, err := api.CreateSnapshots(cctx, in)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ebs: CreateSnapshots of instance %s: %w", instanceID, err)
	}
	if len(out.Snapshots) == 0 {
		return nil, fmt.Errorf("ebs: CreateSnapshots of instance %s: no volume was snapshotted (all excluded?)", instanceID)
	}
	for _, sn := range out.Snapshots {
		set.Volumes = append(set.Volumes, SetVolume{
			VolumeID: aws.ToString(sn.VolumeId), SnapshotID: aws.ToString(sn.SnapshotId),
			SizeGiB: int64(aws.ToInt32(sn.VolumeSize)), State: string(sn.State),
		})
	}
	return set, set.wait(ctx, api, opts)
}

// SnapshotGatewayVolume snapshots a Storage Gateway volume (stored or
// cached) and waits, through EC2 DescribeSnapshots, until it is completed.
func SnapshotGatewayVolume(ctx context.Context, gw GatewayAPI, api EC2API, volumeARN string, opts SetOptions) (*Set, error) {
	if gw == nil || api == nil || volumeARN == "" {
		return nil, errors.New("ebs: snapshot gateway volume: need Storage Gateway and EC2 clients and a volume ARN")
	}
	opts = opts.withDefaults()
	_, tags := opts.tags()
	cctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
	out, err := gw.CreateSnapshot(cctx, &storagegateway.CreateSnapshotInput{
		VolumeARN: aws.String(volumeARN), SnapshotDescription: aws.String(opts.Description), Tags: tags,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ebs: Storage Gateway CreateSnapshot of %s: %w", volumeARN, err)
	}
	set := &Set{Kind: "gateway-volume", Source: volumeARN, Created: time.Now().UTC(),
		Volumes: []SetVolume{{VolumeID: volumeID(volumeARN), SnapshotID: aws.ToString(out.SnapshotId), State: string(ec2types.SnapshotStatePending)}}}
	return set, set.wait(ctx, api, opts)
}

// volumeID returns the vol-… part of a gateway volume ARN.
func volumeID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// wait waits for every snapshot of the set and records states and sizes.
func (s *Set) wait(ctx context.Context, api EC2API, opts SetOptions) error {
	ids := make([]string, len(s.Volumes))
	for i, v := range s.Volumes {
		ids[i] = v.SnapshotID
	}
	werr := WaitCompleted(ctx, api, ids, opts.Wait)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RequestTimeout)
	defer cancel()
	out, err := api.DescribeSnapshots(cctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if err == nil {
		byID := map[string]ec2types.Snapshot{}
		for _, sn := range out.Snapshots {
			byID[aws.ToString(sn.SnapshotId)] = sn
		}
		for i := range s.Volumes {
			if sn, ok := byID[s.Volumes[i].SnapshotID]; ok {
				s.Volumes[i].State = string(sn.State)
				if sz := int64(aws.ToInt32(sn.VolumeSize)); sz > 0 {
					s.Volumes[i].SizeGiB = sz
				}
			}
		}
	}
	if werr != nil {
		return fmt.Errorf("ebs: snapshot set of %s is not usable: %w", s.Source, werr)
	}
	if err != nil {
		return fmt.Errorf("ebs: describe snapshot set of %s: %w", s.Source, err)
	}
	return nil
}

// CopyFunc replicates one volume of a set and returns the id of the
// replicated snapshot.
type CopyFunc func(ctx context.Context, v SetVolume) (targetSnapshotID string, err error)

// ReplicateOptions configure [ReplicateSet].
type ReplicateOptions struct {
	// Path, when set, is where the set manifest is saved (atomically) after
	// each volume, so that a later run ([LoadSet], then ReplicateSet)
	// copies only the volumes still missing. Default "": not saved.
	Path string
}

// ReplicateSet calls cp for every volume of set not yet replicated, in
// order, recording each result; a failed volume does not stop the others.
// The set is marked Replicated only when every volume is. The error joins
// the failures of this run.
func ReplicateSet(ctx context.Context, set *Set, cp CopyFunc, opts ReplicateOptions) error {
	if set == nil || cp == nil {
		return errors.New("ebs: replicate set: need a set and a copy function")
	}
	var errs []error
	for i := range set.Volumes {
		v := &set.Volumes[i]
		if v.Replicated {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		target, err := cp(ctx, *v)
		if err != nil {
			v.Error = err.Error()
			errs = append(errs, fmt.Errorf("ebs: replicate %s (snapshot %s) of set %s: %w", v.VolumeID, v.SnapshotID, set.Source, err))
		} else {
			v.TargetSnapshotID, v.Replicated, v.Error = target, true, ""
		}
		if opts.Path != "" {
			if err := set.Save(opts.Path); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
	}
	set.Replicated = true
	for _, v := range set.Volumes {
		set.Replicated = set.Replicated && v.Replicated
	}
	if opts.Path != "" {
		if err := set.Save(opts.Path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Save writes the set manifest to path atomically (temporary file, fsync,
// rename).
func (s *Set) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("ebs: save set manifest: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ebs: save set manifest %s: %w", path, err)
	}
	return nil
}

// LoadSet reads a set manifest written by [Set.Save].
func LoadSet(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ebs: load set manifest: %w", err)
	}
	var s Set
	if err := json.Unmarshal(b, &s); err != nil || s.Kind == "" || len(s.Volumes) == 0 {
		return nil, fmt.Errorf("ebs: set manifest %s is not a snapshot set (%v); take the set again", path, err)
	}
	return &s, nil
}
