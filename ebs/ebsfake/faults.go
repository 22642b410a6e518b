package ebsfake

import (
	"math"
	"net/http"
	"time"
)

// Call describes one incoming request, as seen by fault injection.
type Call struct {
	Op Op
	// SnapshotID is the snapshot named in the path ("" for StartSnapshot and EC2 calls;
	// the second snapshot for ListChangedBlocks).
	SnapshotID string
	// N counts calls of Op on SnapshotID so far, this one included (1-based).
	N int
}

// Fault is what an injected failure does instead of handling the request.
type Fault struct {
	// Status is the HTTP status of the error response. Default: the status of Type
	// (§4.1), or 500.
	Status int
	// Type is the error type sent in x-amzn-ErrorType and __type. Default
	// "InternalServerException".
	Type string
	// Message and Reason fill the error body. Reason is omitted when empty.
	Message string
	Reason  string
	// Drop closes the connection without any response (hijacked, or aborted when the
	// connection cannot be hijacked). Status, Type, Message and Reason are ignored.
	Drop bool
	// Delay is slept before the fault is applied.
	Delay time.Duration
}

// Common faults.
var (
	FaultInternal    = Fault{Status: 500, Type: ErrInternalServer, Message: "injected internal error"}
	FaultUnavailable = Fault{Status: 503, Type: ErrServiceUnavailable, Message: "injected: service unavailable"}
	FaultThrottle    = Fault{Status: 400, Type: ErrRequestThrottled, Message: "injected: rate exceeded", Reason: ReasonResourceLevelThrottle}
	FaultDrop        = Fault{Drop: true}
)

// Rule selects calls that get a [Fault].
type Rule struct {
	// Op selects the operation; "" matches every operation.
	Op Op
	// SnapshotID selects the snapshot in the path; "" matches any.
	SnapshotID string
	// Nth fires the fault on the Nth matching call only (1-based). 0 fires on every
	// matching call, up to Times.
	Nth int
	// Times bounds how often the rule fires when Nth is 0. 0 means without bound.
	Times int
	Fault Fault
}

type faultRule struct {
	Rule
	seen, fired int
}

type callKey struct {
	op   Op
	snap string
}

// AddFault registers a fault rule. Rules are checked in the order added; the first that
// fires wins. Safe to call while serving.
func (s *Server) AddFault(r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &faultRule{Rule: r})
}

// ClearFaults removes every rule added with [Server.AddFault].
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

func (s *Server) fault(rt route) *Fault {
	s.mu.Lock()
	k := callKey{rt.op, rt.snap}
	s.calls[k]++
	call := Call{Op: rt.op, SnapshotID: rt.snap, N: s.calls[k]}
	var hit *Fault
	for _, fr := range s.rules {
		if (fr.Op != "" && fr.Op != rt.op) || (fr.SnapshotID != "" && fr.SnapshotID != rt.snap) {
			continue
		}
		fr.seen++
		fire := false
		if fr.Nth > 0 {
			fire = fr.seen == fr.Nth
		} else {
			fire = fr.Times == 0 || fr.fired < fr.Times
		}
		if fire && hit == nil {
			fr.fired++
			f := fr.Fault
			hit = &f
		}
	}
	inject := s.opts.Inject
	s.mu.Unlock()
	if hit == nil && inject != nil {
		hit = inject(call)
	}
	if hit != nil {
		s.mu.Lock()
		s.stats.Faults++
		s.mu.Unlock()
	}
	return hit
}

func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, rt route, f *Fault) {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Drop {
		drain(r)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	typ := f.Type
	if typ == "" {
		typ = ErrInternalServer
	}
	e := newErr(typ, f.Reason, "%s", f.Message)
	if f.Message == "" {
		e.Message = "injected fault in " + string(rt.op)
	}
	if f.Status != 0 {
		e.Status = f.Status
	}
	switch rt.op {
	case OpEC2CreateSnapshot, OpEC2CreateSnapshots, OpEC2Describe:
		s.countError(e.Type)
		writeEC2Error(w, e.Status, e.Type, e.Message)
	case OpSGWCreateSnapshot:
		s.countError(e.Type)
		writeSGWError(w, e.Status, e.Type, e.Type, e.Message)
	default:
		s.writeError(w, r, e)
	}
}

// bucket is a token bucket on the Server clock. Callers hold s.mu.
type bucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func (s *Server) bucketFor(key string, rate float64, now time.Time) *bucket {
	b := s.buckets[key]
	if b == nil {
		burst := float64(s.opts.Throttle.Burst)
		if burst == 0 {
			burst = math.Max(1, math.Ceil(rate))
		}
		b = &bucket{rate: rate, tokens: burst, burst: burst, last: now}
		s.buckets[key] = b
	}
	return b
}

// throttle applies [Options.Throttle] to EBS direct API calls.
func (s *Server) throttle(rt route) *apiError {
	t := s.opts.Throttle
	if !rt.direct || (t.Account == 0 && t.PutPerSnapshot == 0 && t.GetPerSnapshot == 0) {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Account > 0 && !s.bucketFor("account", t.Account, now).take(now) {
		s.stats.Throttled++
		return newErr(ErrRequestThrottled, ReasonAccountThrottled, "Rate exceeded for account %s", s.opts.OwnerID)
	}
	var rate float64
	switch rt.op {
	case OpPutSnapshotBlock:
		rate = t.PutPerSnapshot
	case OpGetSnapshotBlock:
		rate = t.GetPerSnapshot
	}
	if rate > 0 && !s.bucketFor(string(rt.op)+"/"+rt.snap, rate, now).take(now) {
		s.stats.Throttled++
		return newErr(ErrRequestThrottled, ReasonResourceLevelThrottle, "Rate exceeded for %s on snapshot %s", rt.op, rt.snap)
	}
	return nil
}

// Stats counts what a Server has seen.
type Stats struct {
	// Requests counts requests per operation, including failed, throttled and faulted ones.
	Requests map[Op]int
	// Errors counts error responses per error type.
	Errors map[string]int
	// Throttled counts requests refused by [Options.Throttle].
	Throttled int
	// Faults counts injected faults.
	Faults int
	// BlocksStored counts PutSnapshotBlock calls that stored a block.
	BlocksStored int
}

func newStats() Stats { return Stats{Requests: map[Op]int{}, Errors: map[string]int{}} }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats
	c.Requests = make(map[Op]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		c.Requests[k] = v
	}
	c.Errors = make(map[string]int, len(s.stats.Errors))
	for k, v := range s.stats.Errors {
		c.Errors[k] = v
	}
	return c
}

func (s *Server) count(op Op) {
	s.mu.Lock()
	s.stats.Requests[op]++
	s.mu.Unlock()
}

func (s *Server) countError(typ string) {
	s.mu.Lock()
	s.stats.Errors[typ]++
	s.mu.Unlock()
}
