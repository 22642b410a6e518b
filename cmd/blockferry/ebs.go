package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/ebs"
)

// ebsEndpoints are the flags that say where one side's AWS services are.
type ebsEndpoints struct {
	region  string
	ebs     string
	ec2     string
	gateway string
}

// ebsFlags are the flags of EBS locations and snapshot commands. The
// source side uses --region and the endpoint flags; the target side uses
// the --dest-* flags, falling back to the source side's.
type ebsFlags struct {
	src, dst    ebsEndpoints
	retryMode   string
	maxAttempts int
	maxBackoff  time.Duration
	size        byteSize
	parent      string
	kmsKey      string
	encrypted   bool
	tags        tagFlag
	description string
	noWait      bool
	waitTimeout time.Duration
}

// tagFlag is a repeatable --tag K=V.
type tagFlag []ebstypes.Tag

func (t *tagFlag) String() string {
	var s []string
	for _, x := range *t {
		s = append(s, aws.ToString(x.Key)+"="+aws.ToString(x.Value))
	}
	return strings.Join(s, ",")
}

func (t *tagFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("tag %q: want KEY=VALUE", s)
	}
	*t = append(*t, ebstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	return nil
}

func (t tagFlag) asMap() map[string]string {
	m := map[string]string{}
	for _, x := range t {
		m[aws.ToString(x.Key)] = aws.ToString(x.Value)
	}
	return m
}

// register adds the flags. withSink adds those of a new snapshot.
func (f *ebsFlags) register(fs *flag.FlagSet, withSink bool) {
	fs.StringVar(&f.src.region, "region", "", "EBS: AWS `REGION` (default: AWS_REGION / the shared config)")
	fs.StringVar(&f.src.ebs, "ebs-endpoint", "", "EBS: direct API endpoint `URL` (default: AWS_ENDPOINT_URL_EBS or the SDK's)")
	fs.StringVar(&f.src.ec2, "ec2-endpoint", "", "EBS: EC2 endpoint `URL` (default: AWS_ENDPOINT_URL_EC2 or the SDK's)")
	fs.StringVar(&f.src.gateway, "gateway-endpoint", "", "EBS: Storage Gateway endpoint `URL` (default: AWS_ENDPOINT_URL_STORAGE_GATEWAY or the SDK's)")
	fs.StringVar(&f.dst.region, "dest-region", "", "EBS target: `REGION` of the new snapshot (default: --region)")
	fs.StringVar(&f.dst.ebs, "dest-ebs-endpoint", "", "EBS target: direct API endpoint `URL` (default: --ebs-endpoint)")
	fs.StringVar(&f.dst.ec2, "dest-ec2-endpoint", "", "EBS target: EC2 endpoint `URL` (default: --ec2-endpoint)")
	fs.StringVar(&f.retryMode, "retry-mode", "standard", "EBS: SDK retry mode, standard or adaptive (adaptive also slows down when throttled)")
	fs.IntVar(&f.maxAttempts, "retry-max-attempts", ebs.DefaultMaxAttempts, "EBS: attempts per request, retries included")
	fs.DurationVar(&f.maxBackoff, "retry-max-backoff", ebs.DefaultMaxBackoff, "EBS: longest wait between two attempts")
	fs.Var(&f.size, "size", "EBS source: the volume's logical size, e.g. 64MiB (default: saved with the snapshot's manifest in --state-dir, else the snapshot's whole GiB)")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", ebs.DefaultWaitTimeout, "EBS: how long to wait for snapshots to reach completed")
	if withSink {
		fs.StringVar(&f.parent, "parent", "", "ebs:new: make the snapshot incremental on completed snapshot `SNAP-ID` (in the target region)")
		fs.StringVar(&f.kmsKey, "kms-key", "", "ebs:new: encrypt with KMS key `ARN` (implies --encrypted)")
		fs.BoolVar(&f.encrypted, "encrypted", false, "ebs:new: encrypt the snapshot (the account's default EBS key unless --kms-key)")
		fs.StringVar(&f.description, "description", "", "EBS: snapshot description")
		fs.BoolVar(&f.noWait, "no-wait", false, "ebs:new: do not wait (EC2 DescribeSnapshots) for the snapshot to reach completed")
	}
	fs.Var(&f.tags, "tag", "EBS: snapshot tag `KEY=VALUE` (repeatable)")
}

// side returns the endpoints of the target side (dest) or the source side.
func (f *ebsFlags) side(dest bool) ebsEndpoints {
	if !dest {
		return f.src
	}
	e := f.dst
	if e.region == "" {
		e.region = f.src.region
	}
	if e.ebs == "" {
		e.ebs = f.src.ebs
	}
	if e.ec2 == "" {
		e.ec2 = f.src.ec2
	}
	if e.gateway == "" {
		e.gateway = f.src.gateway
	}
	return e
}

// clients builds the SDK clients of one side from the default chain
// (credentials, region, AWS_ENDPOINT_URL_*) and the flags.
func (f *ebsFlags) clients(ctx context.Context, dest bool) (*ebs.Clients, error) {
	e := f.side(dest)
	var mode aws.RetryMode
	switch f.retryMode {
	case "", "standard":
		mode = aws.RetryModeStandard
	case "adaptive":
		mode = aws.RetryModeAdaptive
	default:
		return nil, usagef("--retry-mode %q: want standard or adaptive", f.retryMode)
	}
	c, err := ebs.NewClients(ctx, ebs.ClientOptions{
		Region: e.region, EBSEndpoint: e.ebs, EC2Endpoint: e.ec2, GatewayEndpoint: e.gateway, RetryMode: mode,
		MaxAttempts: f.maxAttempts, MaxBackoff: f.maxBackoff,
	})
	if err != nil {
		if strings.Contains(err.Error(), "region") {
			return nil, fmt.Errorf("%w (or give --region)", err)
		}
		return nil, err
	}
	return c, nil
}

// explainAWS adds what to do to an error from an AWS call the operator can
// fix: missing credentials, an endpoint that does not answer.
func explainAWS(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "credentials"):
		return fmt.Errorf("%w: no usable AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (any values for a fake)", err)
	case strings.Contains(s, "connection refused"), strings.Contains(s, "no such host"), strings.Contains(s, "i/o timeout"):
		return fmt.Errorf("%w: the AWS endpoint does not answer: check --ebs-endpoint, --ec2-endpoint, --gateway-endpoint (--dest-* for a target), AWS_ENDPOINT_URL_* and the network", err)
	}
	return err
}

// isEBS reports whether l is an EBS location.
func isEBS(l location) bool { return l.scheme.prefix == "ebs:" }

// ebsStateDir is where the manifests of EBS snapshots written by copy are
// kept: --state-dir, else blockferry's cache directory. Losing it only
// makes the next incremental copy slower (it is then written whole on its
// parent). "" when there is nowhere.
func ebsStateDir(stateDir string) string {
	if stateDir != "" {
		return stateDir
	}
	if d := defaultCacheDir(); d != "" {
		return filepath.Join(d, "ebs")
	}
	return ""
}

// ebsManifestPath is where the manifest of snapshot id is saved in dir.
func ebsManifestPath(dir, id string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "ebs_"+safeName(id)+".bfm")
}

func openEBSSource(ctx context.Context, l location, o sourceOptions) (blockdiff.Source, func() error, error) {
	if l.path == "new" {
		return nil, nil, usagef("%s: ebs:new is a target; to read a snapshot give ebs:snap-ID", l.raw)
	}
	if !strings.HasPrefix(l.path, "snap-") {
		return nil, nil, usagef("%s: want ebs:snap-ID (an existing snapshot) or ebs:new (a target)", l.raw)
	}
	f := o.ebs
	if f == nil {
		f = &ebsFlags{}
	}
	c, err := f.clients(ctx, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", l.raw, err)
	}
	size := int64(f.size)
	if size == 0 && o.stateDir != "" {
		// The snapshot's own size is whole GiB; a copy that wrote it from a
		// smaller volume saved that volume's manifest.
		if m, err := blockdiff.ReadManifestFile(ebsManifestPath(o.stateDir, l.path)); err == nil {
			size = m.Geometry().Size
		}
	}
	src, err := ebs.OpenSnapshot(ctx, c.EBS, l.path, ebs.SourceOptions{Size: size, BlockSize: o.blockSize})
	if errors.Is(err, blockdiff.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w (check the id and the region: snapshots are regional)", err)
	}
	if err != nil {
		return nil, nil, explainAWS(err)
	}
	return src, nil, nil
}

func openEBSSink(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	if l.path != "new" {
		return nil, usagef("%s: an existing snapshot cannot be written: give ebs:new as the target", l.raw)
	}
	if g.BlockSize != ebs.BlockSize {
		return nil, usagef("%s: EBS snapshots have 512KiB blocks but the source is read in %d-byte blocks: use --block-size 512KiB", l.raw, g.BlockSize)
	}
	f := o.ebs
	if f == nil {
		f = &ebsFlags{}
	}
	c, err := f.clients(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.raw, err)
	}
	so := ebs.SinkOptions{
		Size:             g.Size,
		ParentSnapshotID: f.parent,
		Tags:             f.tags,
		Description:      f.description,
		Encrypted:        f.encrypted || f.kmsKey != "",
		KMSKeyARN:        f.kmsKey,
		WaitTimeout:      f.waitTimeout,
	}
	if o.journal != "" {
		so.StatePath = o.journal + ".ebs-state"
	}
	ec2c := ebs.EC2API(c.EC2)
	if f.noWait {
		ec2c = nil
	}
	s, err := ebs.NewSnapshot(ctx, c.EBS, ec2c, so)
	if err != nil {
		return nil, explainAWS(err)
	}
	return s, nil
}

// ebsSaveManifest saves m as the manifest of the snapshot the sink wrote,
// for later copies on it (--parent) and for its logical size.
func ebsSaveManifest(dir, id string, m *blockdiff.Manifest) (string, error) {
	p := ebsManifestPath(dir, id)
	if p == "" || m == nil {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	if err := blockdiff.WriteManifestFile(p, m); err != nil {
		return "", err
	}
	return p, nil
}

// ebsParentBase returns the saved manifest of parent, the base of an
// incremental snapshot on it (it starts with the parent's content).
func ebsParentBase(dir, parent string, res *copyResult) *blockdiff.Manifest {
	p := ebsManifestPath(dir, parent)
	if p == "" {
		return nil
	}
	m, err := blockdiff.ReadManifestFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			res.Notes = append(res.Notes, fmt.Sprintf("no saved manifest of parent %s in %s: every block is written (give --base or the --state-dir of the copy that made it)", parent, dir))
		} else {
			res.Notes = append(res.Notes, fmt.Sprintf("saved manifest of parent %s ignored: %v", parent, err))
		}
		return nil
	}
	res.Base, res.BaseHow = p, "parent"
	return m
}
