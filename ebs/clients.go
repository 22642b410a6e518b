package ebs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/storagegateway"
	"github.com/aws/smithy-go"
)

// EBSAPI is the part of the EBS direct APIs client (*ebs.Client of
// aws-sdk-go-v2/service/ebs) that this package calls. Its methods are safe
// for concurrent use.
type EBSAPI interface {
	ListSnapshotBlocks(ctx context.Context, in *awsebs.ListSnapshotBlocksInput, optFns ...func(*awsebs.Options)) (*awsebs.ListSnapshotBlocksOutput, error)
	ListChangedBlocks(ctx context.Context, in *awsebs.ListChangedBlocksInput, optFns ...func(*awsebs.Options)) (*awsebs.ListChangedBlocksOutput, error)
	GetSnapshotBlock(ctx context.Context, in *awsebs.GetSnapshotBlockInput, optFns ...func(*awsebs.Options)) (*awsebs.GetSnapshotBlockOutput, error)
	StartSnapshot(ctx context.Context, in *awsebs.StartSnapshotInput, optFns ...func(*awsebs.Options)) (*awsebs.StartSnapshotOutput, error)
	PutSnapshotBlock(ctx context.Context, in *awsebs.PutSnapshotBlockInput, optFns ...func(*awsebs.Options)) (*awsebs.PutSnapshotBlockOutput, error)
	CompleteSnapshot(ctx context.Context, in *awsebs.CompleteSnapshotInput, optFns ...func(*awsebs.Options)) (*awsebs.CompleteSnapshotOutput, error)
}

// EC2API is the part of the EC2 client (*ec2.Client) that this package
// calls: snapshot triggers and the DescribeSnapshots the completion waiter
// polls.
type EC2API interface {
	CreateSnapshot(ctx context.Context, in *ec2.CreateSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error)
	CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// GatewayAPI is the part of the Storage Gateway client
// (*storagegateway.Client) that this package calls.
type GatewayAPI interface {
	CreateSnapshot(ctx context.Context, in *storagegateway.CreateSnapshotInput, optFns ...func(*storagegateway.Options)) (*storagegateway.CreateSnapshotOutput, error)
}

var (
	_ EBSAPI     = (*awsebs.Client)(nil)
	_ EC2API     = (*ec2.Client)(nil)
	_ GatewayAPI = (*storagegateway.Client)(nil)
)

// Defaults of [ClientOptions].
const (
	DefaultMaxAttempts    = 10
	DefaultMaxBackoff     = 20 * time.Second
	DefaultAttemptTimeout = 2 * time.Minute
)

// ClientOptions configure [NewClients] and [NewRetryer]. The zero value
// works: region and credentials from the default chain, the SDK's default
// endpoints, standard retry mode with [DefaultMaxAttempts].
type ClientOptions struct {
	// Region overrides the region of the default configuration chain
	// (AWS_REGION, the shared config file). Default: the chain's.
	Region string
	// EBSEndpoint, EC2Endpoint and GatewayEndpoint override the service
	// endpoints (for a fake, a VPC endpoint or FIPS). Default: the SDK's,
	// which honours AWS_ENDPOINT_URL_EBS, AWS_ENDPOINT_URL_EC2 and
	// AWS_ENDPOINT_URL_STORAGE_GATEWAY by itself.
	EBSEndpoint, EC2Endpoint, GatewayEndpoint string
	// RetryMode is aws.RetryModeStandard (default) or
	// aws.RetryModeAdaptive, which also slows the client's own request
	// rate when it is throttled.
	RetryMode aws.RetryMode
	// MaxAttempts is the number of attempts per request, retries included.
	// Default [DefaultMaxAttempts] (10).
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts. Default
	// [DefaultMaxBackoff] (20 s).
	MaxBackoff time.Duration
	// AttemptTimeout bounds one HTTP attempt, reading the response body
	// included. Default [DefaultAttemptTimeout] (2 min).
	AttemptTimeout time.Duration
	// HTTPClient, when set, replaces the SDK's HTTP client (AttemptTimeout
	// is then the caller's business).
	HTTPClient aws.HTTPClient
}

func (o ClientOptions) withDefaults() (ClientOptions, error) {
	if o.MaxAttempts < 0 || o.MaxBackoff < 0 || o.AttemptTimeout < 0 {
		return o, errors.New("ebs: client options: MaxAttempts, MaxBackoff and AttemptTimeout must not be negative")
	}
	switch o.RetryMode {
	case "", aws.RetryModeStandard, aws.RetryModeAdaptive:
	default:
		return o, fmt.Errorf("ebs: client options: retry mode %q: want %q or %q", o.RetryMode, aws.RetryModeStandard, aws.RetryModeAdaptive)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	return o, nil
}

// Clients holds the three SDK clients this package uses.
type Clients struct {
	EBS     *awsebs.Client
	EC2     *ec2.Client
	Gateway *storagegateway.Client
}

// NewClients loads the default AWS configuration (credential chain,
// region, endpoint variables) and returns clients configured by o, with
// the retry policy of [NewRetryer].
func NewClients(ctx context.Context, o ClientOptions) (*Clients, error) {
	var lo []func(*config.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("ebs: load AWS configuration: %w; check AWS_PROFILE, AWS_REGION and the credential chain", err)
	}
	return NewClientsFromConfig(cfg, o)
}

// NewClientsFromConfig is [NewClients] with a configuration the caller
// built (tests pass static credentials and a fake's endpoints).
func NewClientsFromConfig(cfg aws.Config, o ClientOptions) (*Clients, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Region != "" {
		cfg.Region = o.Region
	}
	if cfg.Region == "" {
		return nil, errors.New("ebs: no AWS region configured; set AWS_REGION or pass a region")
	}
	cfg.Retryer = func() aws.Retryer { return newRetryer(o) }
	cfg.RetryMaxAttempts, cfg.RetryMode = 0, ""
	if o.HTTPClient != nil {
		cfg.HTTPClient = o.HTTPClient
	} else {
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(o.AttemptTimeout)
	}
	c := &Clients{
		EBS: awsebs.NewFromConfig(cfg, func(x *awsebs.Options) {
			if o.EBSEndpoint != "" {
				x.BaseEndpoint = aws.String(o.EBSEndpoint)
			}
		}),
		EC2: ec2.NewFromConfig(cfg, func(x *ec2.Options) {
			if o.EC2Endpoint != "" {
				x.BaseEndpoint = aws.String(o.EC2Endpoint)
			}
		}),
		Gateway: storagegateway.NewFromConfig(cfg, func(x *storagegateway.Options) {
			if o.GatewayEndpoint != "" {
				x.BaseEndpoint = aws.String(o.GatewayEndpoint)
			}
		}),
	}
	return c, nil
}

// NewRetryer returns the retry policy of this package's clients, for
// callers that build SDK clients themselves (set it as Options.Retryer):
// the SDK's standard or adaptive retryer (5xx, throttling, timeouts), plus
// ConcurrentLimitExceededException and ValidationException "Failed to read
// block data", which the EBS documentation lists as retryable but the SDK
// does not retry (docs/ebs-direct-api.md §4.4, §7). The client-side retry
// quota is off: EBS throttles per snapshot, and a long copy must not give up
// because many of its requests were throttled. An invalid o falls back to
// the defaults.
func NewRetryer(o ClientOptions) aws.Retryer {
	o, err := o.withDefaults()
	if err != nil {
		o, _ = ClientOptions{}.withDefaults()
	}
	return newRetryer(o)
}

func newRetryer(o ClientOptions) aws.Retryer {
	std := func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		so.RateLimiter = ratelimit.None
		so.Retryables = append(so.Retryables, retry.IsErrorRetryableFunc(ebsRetryable))
	}
	var r aws.Retryer
	if o.RetryMode == aws.RetryModeAdaptive {
		r = retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, std)
		})
	} else {
		r = retry.NewStandard(std)
	}
	return retry.AddWithErrorCodes(r, "ConcurrentLimitExceededException")
}

// ebsRetryable marks the EBS errors the documentation calls retryable and
// the SDK does not know.
func ebsRetryable(err error) aws.Ternary {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" &&
		strings.Contains(ae.ErrorMessage(), "Failed to read block data") {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// httpClient is what tests may pass as ClientOptions.HTTPClient.
var _ aws.HTTPClient = (*http.Client)(nil)
