package ebs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"

	"github.com/blockferry/blockferry/blockdiff"
)

// mapErr wraps an SDK error from op on snapshot snap, adding the blockdiff
// sentinel that matches it (both errors stay in the chain).
func mapErr(op, snap string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ebs: %s %s: %w", op, snap, err)
	}
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("ebs: %s %s: %w: %w", op, snap, blockdiff.ErrNotFound, err)
	}
	var ve *types.ValidationException
	if errors.As(err, &ve) {
		switch ve.Reason {
		case types.ValidationExceptionReasonUnrelatedSnapshots:
			return fmt.Errorf("ebs: %s %s: %w: %w", op, snap, blockdiff.ErrUnrelated, err)
		case types.ValidationExceptionReasonInvalidSnapshotId, types.ValidationExceptionReasonWriteRequestTimeout:
			return fmt.Errorf("ebs: %s %s: the snapshot is missing or not in the state this call needs (a snapshot is written while pending and read once completed): %w", op, snap, err)
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "AccessDenied") {
		return fmt.Errorf("ebs: %s %s: access denied; check the IAM policy (ebs:%s) and, for an encrypted snapshot, the KMS key grants: %w", op, snap, op, err)
	}
	return fmt.Errorf("ebs: %s %s: %w", op, snap, err)
}

// isBlockTokenError reports whether err is ValidationException
// INVALID_BLOCK_TOKEN (expired or superseded block token).
func isBlockTokenError(err error) bool {
	var ve *types.ValidationException
	return errors.As(err, &ve) && ve.Reason == types.ValidationExceptionReasonInvalidBlockToken
}

// isNotPending reports whether a put failed because the snapshot is no
// longer writable (completed, error, timed out, gone).
func isNotPending(err error) bool {
	var ve *types.ValidationException
	if errors.As(err, &ve) {
		return ve.Reason == types.ValidationExceptionReasonInvalidSnapshotId || ve.Reason == types.ValidationExceptionReasonWriteRequestTimeout
	}
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
