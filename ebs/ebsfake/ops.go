package ebsfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// epoch marshals a time as epoch seconds, a JSON number with milliseconds (§1).
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

type startRequest struct {
	VolumeSize       *int64  `json:"VolumeSize,omitempty"`
	ParentSnapshotID string  `json:"ParentSnapshotId,omitempty"`
	Tags             []Tag   `json:"Tags,omitempty"`
	Description      *string `json:"Description,omitempty"`
	ClientToken      string  `json:"ClientToken,omitempty"`
	Encrypted        *bool   `json:"Encrypted,omitempty"`
	KmsKeyArn        string  `json:"KmsKeyArn,omitempty"`
	Timeout          *int64  `json:"Timeout,omitempty"`
}

type startResponse struct {
	SnapshotID       string  `json:"SnapshotId"`
	OwnerID          string  `json:"OwnerId"`
	Status           Status  `json:"Status"`
	StartTime        epoch   `json:"StartTime"`
	VolumeSize       int64   `json:"VolumeSize"`
	BlockSize        int     `json:"BlockSize"`
	Description      *string `json:"Description"`
	Tags             []Tag   `json:"Tags"`
	ParentSnapshotID string  `json:"ParentSnapshotId,omitempty"`
	KmsKeyArn        string  `json:"KmsKeyArn,omitempty"`
	SseType          string  `json:"SseType,omitempty"`
}

type idemEntry struct {
	snap   string
	params string
	at     time.Time
}

func (s *Server) startSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "Failed to read request body: %v", err))
		return
	}
	var req startRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "Request body is not a valid StartSnapshot request: %v", err))
		return
	}
	resp, apiErr := s.start(req)
	if apiErr != nil {
		s.writeError(w, r, apiErr)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) start(req startRequest) (*startResponse, *apiError) {
	token := req.ClientToken
	req.ClientToken = ""
	canon, _ := json.Marshal(req)
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if token != "" {
		if len(token) > 255 || !noSpaceRe.MatchString(token) {
			return nil, validation(ReasonInvalidParameterValue, "ClientToken must be 1 to 255 characters without white space")
		}
		if e, ok := s.idem[token]; ok && now.Sub(e.at) < clientTokenTTL {
			if e.params != string(canon) {
				return nil, newErr(ErrConflict, "", "The request with client token %s has different parameters than the original request", token)
			}
			sn := s.lookup(e.snap, now)
			return s.startResp(sn), nil
		}
	}
	if apiErr := validateStart(&req); apiErr != nil {
		return nil, apiErr
	}
	sn := &snapshot{
		owner: s.opts.OwnerID, volumeSize: *req.VolumeSize, tags: req.Tags,
		start: now, lastActivity: now, timeout: 60 * time.Minute, status: StatusPending,
		blocks: map[int32]*block{}, inflight: map[int32]bool{}, clientToken: token,
		kmsArn: req.KmsKeyArn,
	}
	if req.Description != nil {
		sn.description = *req.Description
	}
	if req.Timeout != nil {
		sn.timeout = time.Duration(*req.Timeout) * time.Minute
	}
	sn.encrypted = req.Encrypted != nil && *req.Encrypted
	if req.ParentSnapshotID != "" {
		if !validSnapshotID(req.ParentSnapshotID) {
			return nil, validation(ReasonInvalidSnapshotID, "ParentSnapshotId %q is not a valid snapshot id", req.ParentSnapshotID)
		}
		p := s.lookup(req.ParentSnapshotID, now)
		if p == nil {
			return nil, notFound(req.ParentSnapshotID)
		}
		if p.status != StatusCompleted {
			return nil, validation(ReasonInvalidSnapshotID, "The parent snapshot '%s' is %s; it must be completed", p.id, p.status)
		}
		if p.volumeSize != sn.volumeSize {
			return nil, validation(ReasonInvalidVolumeSize, "VolumeSize %d differs from the parent snapshot's %d GiB", sn.volumeSize, p.volumeSize)
		}
		if s.opts.EncryptionByDefault && !p.encrypted {
			return nil, validation(ReasonInvalidParameterValue, "Encryption by default is enabled; the unencrypted parent snapshot '%s' cannot be used, copy it with encryption first", p.id)
		}
		sn.parent, sn.root = p, p.root
		if p.encrypted {
			sn.encrypted = true
			if sn.kmsArn == "" {
				sn.kmsArn = p.kmsArn
			}
		}
	}
	if s.opts.EncryptionByDefault && sn.parent == nil {
		sn.encrypted = true
	}
	if sn.encrypted && sn.kmsArn == "" {
		sn.kmsArn = "arn:aws:kms:" + s.opts.Region + ":" + s.opts.OwnerID + ":key/00000000-0000-4000-8000-0000000e0b50"
	}
	if s.pendingCount(now) >= s.opts.MaxPendingSnapshots {
		return nil, newErr(ErrConcurrentLimit, "", "You have reached the limit of %d pending snapshots; complete some before starting more", s.opts.MaxPendingSnapshots)
	}
	sn.id = s.newSnapshotID()
	if sn.root == nil {
		sn.root = sn
	}
	s.snaps[sn.id] = sn
	s.order = append(s.order, sn.id)
	if token != "" {
		for k, e := range s.idem {
			if now.Sub(e.at) >= clientTokenTTL {
				delete(s.idem, k)
			}
		}
		s.idem[token] = idemEntry{snap: sn.id, params: string(canon), at: now}
	}
	return s.startResp(sn), nil
}

func validateStart(req *startRequest) *apiError {
	if req.VolumeSize == nil {
		return validation(ReasonInvalidVolumeSize, "VolumeSize is required")
	}
	if v := *req.VolumeSize; v < 1 || v > 65536 {
		return validation(ReasonInvalidVolumeSize, "VolumeSize %d GiB is outside 1 to 65536", v)
	}
	if req.Timeout != nil && (*req.Timeout < 10 || *req.Timeout > 4320) {
		return validation(ReasonInvalidParameterValue, "Timeout %d minutes is outside 10 to 4320", *req.Timeout)
	}
	if req.Description != nil && (len(*req.Description) < 1 || len(*req.Description) > 255) {
		return validation(ReasonInvalidParameterValue, "Description must be 1 to 255 characters, got %d", len(*req.Description))
	}
	if len(req.Tags) > 50 {
		return validation(ReasonInvalidTag, "%d tags given; at most 50 are allowed", len(req.Tags))
	}
	for _, t := range req.Tags {
		if len(t.Key) < 1 || len(t.Key) > 127 || len(t.Value) > 255 || strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return validation(ReasonInvalidTag, "Tag key %q is invalid (1 to 127 characters, no aws: prefix, value up to 255)", t.Key)
		}
	}
	enc := req.Encrypted != nil && *req.Encrypted
	if enc && req.ParentSnapshotID != "" {
		return validation(ReasonInvalidParameterValue, "Encrypted cannot be set together with ParentSnapshotId; an incremental snapshot takes the parent's encryption")
	}
	if req.KmsKeyArn != "" {
		if len(req.KmsKeyArn) > 2048 || !kmsArnRe.MatchString(req.KmsKeyArn) {
			return validation(ReasonInvalidParameterValue, "KmsKeyArn %q is not a KMS key ARN", req.KmsKeyArn)
		}
		if !enc {
			return validation(ReasonInvalidParameterValue, "KmsKeyArn requires Encrypted to be true")
		}
	}
	return nil
}

// startResp describes sn as a StartSnapshot response. Callers hold s.mu.
func (s *Server) startResp(sn *snapshot) *startResponse {
	resp := &startResponse{
		SnapshotID: sn.id, OwnerID: sn.owner, Status: sn.status, StartTime: epoch(sn.start),
		VolumeSize: sn.volumeSize, BlockSize: BlockSize, Tags: sn.tags, KmsKeyArn: sn.kmsArn,
	}
	if sn.description != "" {
		d := sn.description
		resp.Description = &d
	}
	if sn.parent != nil {
		resp.ParentSnapshotID = sn.parent.id
	}
	if sn.encrypted {
		resp.SseType = "sse-ebs"
	}
	return resp
}

// checkSnapshotID validates the pattern of a snapshot id from a path or query.
func checkSnapshotID(id string) *apiError {
	if !validSnapshotID(id) {
		return validation(ReasonInvalidSnapshotID, "The snapshot id '%s' is not valid; it must match snap-[0-9a-f]+", id)
	}
	return nil
}

func parseIndex(v string) (int32, *apiError) {
	i, err := strconv.ParseInt(v, 10, 32)
	if err != nil || i < 0 {
		return 0, validation(ReasonInvalidBlock, "BlockIndex %q is not a non-negative 32-bit integer", v)
	}
	return int32(i), nil
}

func (s *Server) putSnapshotBlock(w http.ResponseWriter, r *http.Request, id, idxText string) {
	if e := checkSnapshotID(id); e != nil {
		s.writeError(w, r, e)
		return
	}
	idx, e := parseIndex(idxText)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	h := r.Header
	now := s.now()
	s.mu.Lock()
	sn := s.lookup(id, now)
	e = func() *apiError {
		switch {
		case sn == nil:
			return notFound(id)
		case sn.timedOut:
			return validation(ReasonWriteRequestTimeout, "The snapshot '%s' timed out: %s", id, sn.statusMessage)
		case sn.status != StatusPending || sn.sealing:
			return validation(ReasonInvalidSnapshotID, "The snapshot '%s' is %s and no longer accepts blocks", id, stateWord(sn))
		case int64(idx) >= sn.volumeSize*blocksPerGiB:
			return validation(ReasonInvalidBlock, "BlockIndex %d is beyond the end of the %d GiB volume (last index %d)", idx, sn.volumeSize, sn.volumeSize*blocksPerGiB-1)
		case sn.inflight[idx]:
			return validation(ReasonConflictingBlock, "Another PutSnapshotBlock for block %d of '%s' is in progress", idx, id)
		}
		return nil
	}()
	if e == nil {
		sn.inflight[idx] = true
		sn.lastActivity = now
	}
	s.mu.Unlock()
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	defer func() {
		s.mu.Lock()
		delete(sn.inflight, idx)
		s.mu.Unlock()
	}()

	dl, err := strconv.ParseInt(h.Get("x-amz-Data-Length"), 10, 64)
	if err != nil || dl != BlockSize {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Data-Length %q is not supported; the only supported size is 524288", h.Get("x-amz-Data-Length")))
		return
	}
	if alg := h.Get("x-amz-Checksum-Algorithm"); alg != "SHA256" {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Checksum-Algorithm %q is not supported; use SHA256", alg))
		return
	}
	want, err := base64.StdEncoding.DecodeString(h.Get("x-amz-Checksum"))
	if err != nil || len(want) != sha256.Size {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Checksum must be the base64 SHA-256 of the block"))
		return
	}
	if p := h.Get("x-amz-Progress"); p != "" {
		if v, err := strconv.Atoi(p); err != nil || v < 0 || v > 100 {
			s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Progress %q is outside 0 to 100", p))
			return
		}
	}
	bufp := blockPool.Get().(*[]byte)
	buf := *bufp
	kept := false
	defer func() {
		if !kept {
			blockPool.Put(bufp)
		}
	}()
	_, err = io.ReadFull(r.Body, buf)
	var extra [1]byte
	if err == nil {
		if m, _ := r.Body.Read(extra[:]); m > 0 {
			err = errors.New("body longer than x-amz-Data-Length")
		}
	}
	if err != nil {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "Failed to read block data"))
		return
	}
	sum := sha256.Sum256(buf)
	if !bytes.Equal(sum[:], want) {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "The checksum of block %d does not match x-amz-Checksum: the data was corrupted in transit or the checksum was computed over other bytes", idx))
		return
	}
	s.mu.Lock()
	s.gen++
	b := &block{gen: s.gen, sum: sum}
	s.mu.Unlock()
	kept, err = s.store.put(b, buf)
	if err != nil {
		s.writeError(w, r, newErr(ErrInternalServer, "", "%v", err))
		return
	}
	now = s.now()
	s.mu.Lock()
	if sn.status != StatusPending || sn.sealing {
		s.mu.Unlock()
		s.writeError(w, r, validation(ReasonInvalidSnapshotID, "The snapshot '%s' was sealed while block %d was being written", id, idx))
		return
	}
	sn.blocks[idx] = b
	sn.lastActivity = now
	s.stats.BlocksStored++
	s.mu.Unlock()

	w.Header().Set("x-amz-Checksum", base64.StdEncoding.EncodeToString(sum[:]))
	w.Header().Set("x-amz-Checksum-Algorithm", "SHA256")
	writeJSON(w, http.StatusCreated, struct{}{})
}

func stateWord(sn *snapshot) string {
	if sn.status == StatusPending && sn.sealing {
		return "being completed"
	}
	return string(sn.status)
}

func (s *Server) completeSnapshot(w http.ResponseWriter, r *http.Request, id string) {
	drain(r)
	if e := checkSnapshotID(id); e != nil {
		s.writeError(w, r, e)
		return
	}
	h := r.Header
	count, err := strconv.ParseInt(h.Get("x-amz-ChangedBlocksCount"), 10, 32)
	if err != nil || count < 0 {
		s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-ChangedBlocksCount %q must be a non-negative integer", h.Get("x-amz-ChangedBlocksCount")))
		return
	}
	var want []byte
	if c := h.Get("x-amz-Checksum"); c != "" {
		want, err = base64.StdEncoding.DecodeString(c)
		if err != nil || len(want) != sha256.Size {
			s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Checksum must be a base64 SHA-256"))
			return
		}
		if alg := h.Get("x-amz-Checksum-Algorithm"); alg != "SHA256" {
			s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Checksum-Algorithm %q is not supported; use SHA256", alg))
			return
		}
		if m := h.Get("x-amz-Checksum-Aggregation-Method"); m != "LINEAR" {
			s.writeError(w, r, validation(ReasonInvalidParameterValue, "x-amz-Checksum-Aggregation-Method %q is not supported; use LINEAR", m))
			return
		}
	}
	st, e := s.complete(id, int(count), want)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]Status{"Status": st})
}

// complete seals snapshot id and returns the status to report.
func (s *Server) complete(id string, count int, want []byte) (Status, *apiError) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.lookup(id, now)
	switch {
	case sn == nil:
		return "", notFound(id)
	case sn.timedOut:
		return "", validation(ReasonWriteRequestTimeout, "The snapshot '%s' timed out: %s", id, sn.statusMessage)
	case sn.status == StatusError:
		return "", validation(ReasonInvalidSnapshotID, "The snapshot '%s' is in error: %s", id, sn.statusMessage)
	case sn.sealing || sn.status == StatusCompleted:
		// A repeated CompleteSnapshot (a client retry) reports the current status.
		return sn.status, nil
	}
	var problem string
	if count != len(sn.blocks) {
		problem = "ChangedBlocksCount " + strconv.Itoa(count) + " does not match the " + strconv.Itoa(len(sn.blocks)) + " blocks written"
	} else if want != nil {
		if got := linear(sn.blocks); !bytes.Equal(got[:], want) {
			problem = "the LINEAR aggregated checksum does not match the blocks written"
		}
	}
	if problem != "" && s.opts.StrictComplete {
		return "", validation(ReasonInvalidParameterValue, "%s", problem)
	}
	sn.sealing, sn.sealAt, sn.sealErr, sn.lastActivity = true, now.Add(s.opts.CompletionDelay), problem, now
	return StatusPending, nil
}

// linear is the LINEAR aggregate checksum of §5.8: SHA-256 over the raw block digests in
// ascending index order.
func linear(blocks map[int32]*block) [32]byte {
	idx := make([]int32, 0, len(blocks))
	for i := range blocks {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	h := sha256.New()
	for _, i := range idx {
		h.Write(blocks[i].sum[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// pageArgs are the shared List query parameters.
type pageArgs struct {
	max    int
	cursor int32
}

func (s *Server) parsePage(r *http.Request, op byte, a, b string, now time.Time) (pageArgs, *apiError) {
	q := r.URL.Query()
	pa := pageArgs{max: 10000}
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return pa, validation(ReasonInvalidParameterValue, "maxResults %q is not an integer", v)
		}
		if n > 10000 {
			return pa, validation(ReasonInvalidParameterValue, "maxResults %d is above the maximum of 10000", n)
		}
		pa.max = max(n, 100)
	}
	if v := q.Get("startingBlockIndex"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return pa, validation(ReasonInvalidParameterValue, "startingBlockIndex %q is not a non-negative integer", v)
		}
		pa.cursor = int32(n)
	}
	if v := q.Get("pageToken"); v != "" {
		t, err := s.parsePageToken(v)
		if err != nil {
			return pa, validation(ReasonInvalidPageToken, "The page token is not valid: %v", err)
		}
		if t.op != op || t.a != a || t.b != b {
			return pa, validation(ReasonInvalidPageToken, "The page token belongs to another request")
		}
		if !now.Before(t.expiry) {
			return pa, validation(ReasonInvalidPageToken, "The page token expired at %s; restart the listing", t.expiry.UTC().Format(time.RFC3339))
		}
		pa.cursor = t.cursor
	}
	return pa, nil
}

// readable returns a shallow copy of the completed snapshot id, or the error to send. The
// copy's view and indexes may be read without s.mu: they are replaced, never modified.
// Callers hold s.mu.
func (s *Server) readable(id string, now time.Time) (*snapshot, *apiError) {
	if e := checkSnapshotID(id); e != nil {
		return nil, e
	}
	sn := s.lookup(id, now)
	if sn == nil {
		return nil, notFound(id)
	}
	if sn.status != StatusCompleted {
		return nil, validation(ReasonInvalidSnapshotID, "The snapshot '%s' is %s; only completed snapshots can be read", id, stateWord(sn))
	}
	s.ensureView(sn)
	cp := *sn
	return &cp, nil
}

type listBlock struct {
	BlockIndex int32  `json:"BlockIndex"`
	BlockToken string `json:"BlockToken"`
}

type listBlocksResponse struct {
	Blocks     []listBlock `json:"Blocks"`
	ExpiryTime epoch       `json:"ExpiryTime"`
	VolumeSize int64       `json:"VolumeSize"`
	BlockSize  int         `json:"BlockSize"`
	NextToken  string      `json:"NextToken,omitempty"`
}

func (s *Server) listSnapshotBlocks(w http.ResponseWriter, r *http.Request, id string) {
	now := s.now()
	s.mu.Lock()
	sn, e := s.readable(id, now)
	s.mu.Unlock()
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	pa, e := s.parsePage(r, 'S', id, "", now)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	expiry := now.Add(blockTokenTTL)
	resp := listBlocksResponse{Blocks: []listBlock{}, ExpiryTime: epoch(expiry), VolumeSize: sn.volumeSize, BlockSize: BlockSize}
	idx := sn.indexes
	i := sort.Search(len(idx), func(k int) bool { return idx[k] >= pa.cursor })
	end := min(len(idx), i+pa.max)
	for _, bi := range idx[i:end] {
		tok := s.blockToken(blockToken{snap: id, index: bi, gen: sn.view[bi].gen, expiry: expiry})
		resp.Blocks = append(resp.Blocks, listBlock{BlockIndex: bi, BlockToken: tok})
	}
	if end < len(idx) {
		resp.NextToken = s.pageToken(pageToken{op: 'S', cursor: idx[end], expiry: now.Add(pageTokenTTL), a: id})
	}
	writeJSON(w, http.StatusOK, resp)
}

type changedBlock struct {
	BlockIndex       int32  `json:"BlockIndex"`
	FirstBlockToken  string `json:"FirstBlockToken,omitempty"`
	SecondBlockToken string `json:"SecondBlockToken,omitempty"`
}

type changedBlocksResponse struct {
	ChangedBlocks []changedBlock `json:"ChangedBlocks"`
	ExpiryTime    epoch          `json:"ExpiryTime"`
	VolumeSize    int64          `json:"VolumeSize"`
	BlockSize     int            `json:"BlockSize"`
	NextToken     string         `json:"NextToken,omitempty"`
}

func (s *Server) listChangedBlocks(w http.ResponseWriter, r *http.Request, secondID string) {
	firstID := r.URL.Query().Get("firstSnapshotId")
	now := s.now()
	s.mu.Lock()
	second, e := s.readable(secondID, now)
	var first *snapshot
	if e == nil && firstID != "" {
		first, e = s.readable(firstID, now)
	}
	s.mu.Unlock()
	if e == nil && firstID == "" && s.opts.StrictChangedBlocks {
		e = validation(ReasonInvalidParameterValue, "firstSnapshotId and secondSnapshotId must be given together")
	}
	if e == nil && first != nil && first.root != second.root {
		e = validation(ReasonUnrelatedSnapshots, "The snapshots '%s' and '%s' are not in the same lineage", firstID, secondID)
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	pa, e := s.parsePage(r, 'C', secondID, firstID, now)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	var fIdx []int32
	var fView map[int32]*block
	if first != nil {
		fIdx, fView = first.indexes, first.view
	}
	sIdx := second.indexes
	expiry := now.Add(blockTokenTTL)
	resp := changedBlocksResponse{ChangedBlocks: []changedBlock{}, ExpiryTime: epoch(expiry), VolumeSize: second.volumeSize, BlockSize: BlockSize}
	// Scan the next pa.max indexes of the union of written indexes; report those that differ.
	i := sort.Search(len(fIdx), func(k int) bool { return fIdx[k] >= pa.cursor })
	j := sort.Search(len(sIdx), func(k int) bool { return sIdx[k] >= pa.cursor })
	for n := 0; n < pa.max && (i < len(fIdx) || j < len(sIdx)); n++ {
		var bi int32
		switch {
		case j >= len(sIdx) || (i < len(fIdx) && fIdx[i] < sIdx[j]):
			bi = fIdx[i]
			i++
		case i >= len(fIdx) || sIdx[j] < fIdx[i]:
			bi = sIdx[j]
			j++
		default:
			bi = sIdx[j]
			i++
			j++
		}
		fb, sb := fView[bi], second.view[bi]
		if fb != nil && sb != nil && fb.gen == sb.gen {
			continue
		}
		cb := changedBlock{BlockIndex: bi}
		if fb != nil {
			cb.FirstBlockToken = s.blockToken(blockToken{snap: firstID, index: bi, gen: fb.gen, expiry: expiry})
		}
		if sb != nil {
			cb.SecondBlockToken = s.blockToken(blockToken{snap: secondID, index: bi, gen: sb.gen, expiry: expiry})
		}
		resp.ChangedBlocks = append(resp.ChangedBlocks, cb)
	}
	if i < len(fIdx) || j < len(sIdx) {
		next := int32(0)
		switch {
		case i >= len(fIdx):
			next = sIdx[j]
		case j >= len(sIdx):
			next = fIdx[i]
		default:
			next = min(fIdx[i], sIdx[j])
		}
		resp.NextToken = s.pageToken(pageToken{op: 'C', cursor: next, expiry: now.Add(pageTokenTTL), a: secondID, b: firstID})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getSnapshotBlock(w http.ResponseWriter, r *http.Request, id, idxText string) {
	idx, e := parseIndex(idxText)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	now := s.now()
	s.mu.Lock()
	sn, e := s.readable(id, now)
	s.mu.Unlock()
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	tok := r.URL.Query().Get("blockToken")
	if tok == "" {
		s.writeError(w, r, validation(ReasonInvalidBlockToken, "blockToken is required; get one from ListSnapshotBlocks or ListChangedBlocks"))
		return
	}
	t, err := s.parseBlockToken(tok)
	var b *block
	switch {
	case err != nil:
		e = validation(ReasonInvalidBlockToken, "The block token is not valid: %v", err)
	case t.snap != id || t.index != idx:
		e = validation(ReasonInvalidBlockToken, "The block token was issued for block %d of '%s', not block %d of '%s'", t.index, t.snap, idx, id)
	case !now.Before(t.expiry):
		e = validation(ReasonInvalidBlockToken, "The block token expired at %s; list the blocks again", t.expiry.UTC().Format(time.RFC3339))
	default:
		b = sn.view[idx]
		if b == nil || b.gen != t.gen {
			e = validation(ReasonInvalidBlockToken, "The block token does not name the current block %d of '%s'", idx, id)
		}
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(BlockSize))
	h.Set("x-amz-Data-Length", strconv.Itoa(BlockSize))
	h.Set("x-amz-Checksum", base64.StdEncoding.EncodeToString(b.sum[:]))
	h.Set("x-amz-Checksum-Algorithm", "SHA256")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, io.NewSectionReader(s.store.reader(b), 0, BlockSize))
}
