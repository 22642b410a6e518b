package ebsfake

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Tag is a snapshot tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// snapshot is the fake's state of one snapshot. Fields are guarded by Server.mu; blocks are
// immutable once stored.
type snapshot struct {
	id, owner, description, kmsArn, clientToken string
	volumeSize                                  int64 // GiB
	parent                                      *snapshot
	root                                        *snapshot // first snapshot of the lineage
	encrypted                                   bool
	tags                                        []Tag
	start, lastActivity                         time.Time
	timeout                                     time.Duration
	status                                      Status
	statusMessage                               string
	blocks                                      map[int32]*block // written in this snapshot
	inflight                                    map[int32]bool   // puts being read
	sealing                                     bool             // CompleteSnapshot accepted
	sealAt                                      time.Time
	sealErr                                     string // non-empty: sealing ends in error
	timedOut                                    bool
	volumeID                                    string // EC2-created snapshots
	progress                                    int

	// view is the effective block map (own blocks over the parent chain's) and its
	// sorted indexes, built once the snapshot is completed.
	view    map[int32]*block
	indexes []int32
}

// refresh applies time-driven transitions (Timeout, sealing). Callers hold s.mu.
func (s *Server) refresh(sn *snapshot, now time.Time) {
	if sn.status != StatusPending {
		return
	}
	if sn.sealing {
		if !now.Before(sn.sealAt) {
			if sn.sealErr != "" {
				sn.status, sn.statusMessage = StatusError, sn.sealErr
			} else {
				s.setCompleted(sn)
			}
		}
		return
	}
	if sn.timeout > 0 && now.Sub(sn.lastActivity) > sn.timeout {
		sn.status, sn.timedOut = StatusError, true
		sn.statusMessage = fmt.Sprintf("no PutSnapshotBlock or CompleteSnapshot within the %v timeout", sn.timeout)
	}
}

// setCompleted marks sn completed and builds its view. It assigns a new map and slice and
// never modifies the old ones, which readers may hold (see readable). Callers hold s.mu.
func (s *Server) setCompleted(sn *snapshot) {
	sn.status, sn.progress = StatusCompleted, 100
	var base map[int32]*block
	if sn.parent != nil {
		s.ensureView(sn.parent)
		base = sn.parent.view
	}
	sn.view = make(map[int32]*block, len(base)+len(sn.blocks))
	for i, b := range base {
		sn.view[i] = b
	}
	for i, b := range sn.blocks {
		sn.view[i] = b
	}
	sn.indexes = make([]int32, 0, len(sn.view))
	for i := range sn.view {
		sn.indexes = append(sn.indexes, i)
	}
	slices.Sort(sn.indexes)
}

// ensureView builds sn's view if it has none (a parent forced to another state by SetState).
func (s *Server) ensureView(sn *snapshot) {
	if sn.view == nil {
		st, msg := sn.status, sn.statusMessage
		s.setCompleted(sn)
		sn.status, sn.statusMessage = st, msg
	}
}

// lookup returns the refreshed snapshot id. Callers hold s.mu.
func (s *Server) lookup(id string, now time.Time) *snapshot {
	sn := s.snaps[id]
	if sn != nil {
		s.refresh(sn, now)
	}
	return sn
}

// pendingCount counts pending snapshots. Callers hold s.mu.
func (s *Server) pendingCount(now time.Time) int {
	n := 0
	for _, sn := range s.snaps {
		s.refresh(sn, now)
		if sn.status == StatusPending {
			n++
		}
	}
	return n
}

// SnapshotInfo describes a snapshot held by a [Server].
type SnapshotInfo struct {
	ID, OwnerID, ParentID, Description, KmsKeyArn, ClientToken string
	// VolumeID is set for snapshots created through the EC2 or Storage Gateway calls.
	VolumeID      string
	VolumeSize    int64 // GiB
	Encrypted     bool
	Tags          []Tag
	Status        Status
	StatusMessage string
	StartTime     time.Time
	Timeout       time.Duration
	// Sealing reports whether CompleteSnapshot was accepted.
	Sealing bool
	// WrittenBlocks counts distinct indexes written in this snapshot (not inherited).
	WrittenBlocks int
	// Blocks counts indexes readable from the snapshot, inherited ones included; it is
	// 0 until the snapshot is completed.
	Blocks int
}

func (sn *snapshot) info() SnapshotInfo {
	in := SnapshotInfo{
		ID: sn.id, OwnerID: sn.owner, Description: sn.description, KmsKeyArn: sn.kmsArn,
		ClientToken: sn.clientToken, VolumeID: sn.volumeID, VolumeSize: sn.volumeSize,
		Encrypted: sn.encrypted, Tags: slices.Clone(sn.tags), Status: sn.status,
		StatusMessage: sn.statusMessage, StartTime: sn.start, Timeout: sn.timeout,
		Sealing: sn.sealing, WrittenBlocks: len(sn.blocks), Blocks: len(sn.indexes),
	}
	if sn.parent != nil {
		in.ParentID = sn.parent.id
	}
	return in
}

// ErrNotFound is returned by the inspection helpers for an unknown snapshot id.
var ErrNotFound = errors.New("ebsfake: snapshot not found")

// Snapshot returns the state of snapshot id, after applying Timeout and sealing on the
// Server clock. It reports false for an unknown id.
func (s *Server) Snapshot(id string) (SnapshotInfo, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.lookup(id, now)
	if sn == nil {
		return SnapshotInfo{}, false
	}
	return sn.info(), true
}

// Snapshots returns every snapshot in creation order.
func (s *Server) Snapshots() []SnapshotInfo {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SnapshotInfo, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.lookup(id, now).info())
	}
	return out
}

// SetState forces snapshot id into status, with message as its status message. Forcing
// completed makes the snapshot readable with the blocks written so far.
func (s *Server) SetState(id string, status Status, message string) error {
	switch status {
	case StatusPending, StatusCompleted, StatusError:
	default:
		return fmt.Errorf("ebsfake: set state of %s: unknown status %q (want pending, completed or error)", id, status)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.lookup(id, now)
	if sn == nil {
		return fmt.Errorf("ebsfake: set state of %s: %w", id, ErrNotFound)
	}
	if status == StatusCompleted {
		s.setCompleted(sn)
	}
	sn.status, sn.statusMessage, sn.sealing = status, message, status != StatusPending
	if status == StatusPending {
		sn.lastActivity, sn.timedOut = now, false
	}
	return nil
}

// ReadBlock returns the data a reader of snapshot id sees at index: its own block, else
// the parent chain's. written is false (and data nil) for an index never written, which
// reads as zeros. It works in every state, so tests can inspect pending snapshots.
func (s *Server) ReadBlock(id string, index int32) (data []byte, written bool, err error) {
	now := s.now()
	s.mu.Lock()
	sn := s.lookup(id, now)
	var b *block
	for p := sn; p != nil && b == nil; p = p.parent {
		b = p.blocks[index]
	}
	s.mu.Unlock()
	if sn == nil {
		return nil, false, fmt.Errorf("ebsfake: read block %d of %s: %w", index, id, ErrNotFound)
	}
	if b == nil {
		return nil, false, nil
	}
	data = make([]byte, BlockSize)
	if _, err := s.store.reader(b).ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, true, fmt.Errorf("ebsfake: read block %d of %s: %w", index, id, err)
	}
	return data, true, nil
}

// WriteBlock stores data at index of the pending snapshot id, as a PutSnapshotBlock
// with a correct checksum would, without HTTP, throttling or faults. It seeds large
// volumes quickly in tests. data must be exactly [BlockSize] bytes; WriteBlock copies it.
func (s *Server) WriteBlock(id string, index int32, data []byte) error {
	if len(data) != BlockSize {
		return fmt.Errorf("ebsfake: write block %d of %s: got %d bytes, want %d", index, id, len(data), BlockSize)
	}
	now := s.now()
	s.mu.Lock()
	sn := s.lookup(id, now)
	switch {
	case sn == nil:
		s.mu.Unlock()
		return fmt.Errorf("ebsfake: write block %d of %s: %w", index, id, ErrNotFound)
	case sn.status != StatusPending || sn.sealing:
		s.mu.Unlock()
		return fmt.Errorf("ebsfake: write block %d of %s: snapshot is %s, not pending", index, id, stateWord(sn))
	case index < 0 || int64(index) >= sn.volumeSize*blocksPerGiB:
		s.mu.Unlock()
		return fmt.Errorf("ebsfake: write block %d of %s: index outside the %d GiB volume", index, id, sn.volumeSize)
	}
	s.gen++
	b := &block{gen: s.gen, sum: zeroDigest}
	s.mu.Unlock()
	if !bytes.Equal(data, zeroBlock[:]) {
		b.sum = sha256.Sum256(data)
		if _, mem := s.store.(memStore); mem {
			data = bytes.Clone(data)
		}
		if _, err := s.store.put(b, data); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.status != StatusPending || sn.sealing {
		return fmt.Errorf("ebsfake: write block %d of %s: snapshot was sealed during the write", index, id)
	}
	sn.blocks[index], sn.lastActivity = b, now
	return nil
}
