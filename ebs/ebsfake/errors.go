package ebsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Error types of the EBS direct APIs (§4.1) and their HTTP status codes.
const (
	ErrValidation         = "ValidationException"
	ErrRequestThrottled   = "RequestThrottledException"
	ErrConcurrentLimit    = "ConcurrentLimitExceededException"
	ErrAccessDenied       = "AccessDeniedException"
	ErrResourceNotFound   = "ResourceNotFoundException"
	ErrConflict           = "ConflictException"
	ErrServiceQuota       = "ServiceQuotaExceededException"
	ErrInternalServer     = "InternalServerException"
	ErrUnknownOperation   = "UnknownOperationException"
	ErrServiceUnavailable = "ServiceUnavailableException"
)

// Reasons used by the fake (§4.1 enums).
const (
	ReasonInvalidPageToken      = "INVALID_PAGE_TOKEN"
	ReasonInvalidBlockToken     = "INVALID_BLOCK_TOKEN"
	ReasonInvalidSnapshotID     = "INVALID_SNAPSHOT_ID"
	ReasonUnrelatedSnapshots    = "UNRELATED_SNAPSHOTS"
	ReasonInvalidBlock          = "INVALID_BLOCK"
	ReasonInvalidTag            = "INVALID_TAG"
	ReasonInvalidParameterValue = "INVALID_PARAMETER_VALUE"
	ReasonInvalidVolumeSize     = "INVALID_VOLUME_SIZE"
	ReasonConflictingBlock      = "CONFLICTING_BLOCK_UPDATE"
	ReasonWriteRequestTimeout   = "WRITE_REQUEST_TIMEOUT"
	ReasonSnapshotNotFound      = "SNAPSHOT_NOT_FOUND"
	ReasonAccountThrottled      = "ACCOUNT_THROTTLED"
	ReasonResourceLevelThrottle = "RESOURCE_LEVEL_THROTTLE"
)

var errorStatus = map[string]int{
	ErrValidation:         400,
	ErrRequestThrottled:   400,
	ErrConcurrentLimit:    400,
	ErrAccessDenied:       403,
	ErrResourceNotFound:   404,
	ErrConflict:           409,
	ErrServiceQuota:       402,
	ErrInternalServer:     500,
	ErrUnknownOperation:   404,
	ErrServiceUnavailable: 503,
}

// apiError is an error response in the restJson1 shape of §4.2.
type apiError struct {
	Status  int
	Type    string
	Message string
	Reason  string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newErr(typ, reason, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 256 {
		msg = msg[:256]
	}
	st, ok := errorStatus[typ]
	if !ok {
		st = 400
	}
	return &apiError{Status: st, Type: typ, Message: msg, Reason: reason}
}

func validation(reason, format string, args ...any) *apiError {
	return newErr(ErrValidation, reason, format, args...)
}

func notFound(id string) *apiError {
	return newErr(ErrResourceNotFound, ReasonSnapshotNotFound, "The snapshot '%s' does not exist.", id)
}

// writeError sends e. The request body is drained first (bounded) so that clients still
// sending a block see the response rather than a reset connection.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	drain(r)
	s.countError(e.Type)
	body := struct {
		Type    string `json:"__type"`
		Message string `json:"Message"`
		Reason  string `json:"Reason,omitempty"`
	}{e.Type, e.Message, e.Reason}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Type)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

func drain(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4*BlockSize))
	}
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
