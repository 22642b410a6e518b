package replicate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// The journal file is a header line (journalMagic), one line of JSON
// (planIdentity), then fixed-size records, each closed by a CRC-32C:
//
//	index u64 | count u32 | kind u8 | action u8 | digest [32]byte | crc u32   (little endian)
//
// A record names a run of blocks completed (written, zeroed, copied or
// found unchanged) with their resulting kind and digest. A torn or corrupt
// tail (a kill mid-write, a power loss) ends the valid part; it is cut off
// and the run redoes those blocks.
//
// With a syncing sink (strict mode) two more records appear: a boot record
// (action actBoot, digest = SHA-256 of the kernel's boot ID) when a run
// starts appending, and a sync marker (actSynced) each time the sink was
// synced after the records before it were written. Records are written at
// once in both modes, so a killed process loses nothing it reported; in
// strict mode the records after the last marker of a run are applied only
// when that run's boot is the current one (the page cache still holds
// their data); after a reboot they are dropped, since a power loss may have
// undone their data. Records before any boot record were written without
// a syncing sink and are applied as they are.
const (
	journalFormat = 1
	journalMagic  = "blockferry journal v1\n"
	recSize       = 8 + 4 + 1 + 1 + blockdiff.DigestSize + 4

	// journalBatch and journalEvery bound the records between fsyncs.
	journalBatch = 256
	journalEvery = time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// planIdentity is the journal header: what must match for a journal to be
// applied to a run.
type planIdentity struct {
	Format      int      `json:"format"`
	Plan        PlanKind `json:"plan"`
	Source      string   `json:"source"`
	Target      string   `json:"target"`
	Base        string   `json:"base_manifest"`
	Geometry    string   `json:"geometry"`
	Fingerprint string   `json:"source_fingerprint"`
	SourceID    string   `json:"source_manifest"`
}

// diff lists the fields of j (the journal's) that differ from now.
func (j planIdentity) diff(now planIdentity) string {
	var out []string
	f := func(name, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: journal %q, now %q", name, a, b))
		}
	}
	f("format", fmt.Sprint(j.Format), fmt.Sprint(now.Format))
	f("plan", string(j.Plan), string(now.Plan))
	f("source", j.Source, now.Source)
	f("target", j.Target, now.Target)
	f("base manifest", j.Base, now.Base)
	f("geometry", j.Geometry, now.Geometry)
	f("source fingerprint", j.Fingerprint, now.Fingerprint)
	f("source manifest", j.SourceID, now.SourceID)
	return strings.Join(out, "; ")
}

type journalRecord struct {
	index, count int64
	kind         blockdiff.Kind
	act          action
	digest       blockdiff.Digest
}

// journal appends records of completed blocks. It is used by the
// collector goroutine only.
type journal struct {
	path     string
	f        *os.File
	syncer   Syncer // the sink, when it can sync
	strict   bool   // mark the records the sink's syncs cover (syncer != nil)
	buf      []byte // scratch for one record
	pending  int    // records since the last fsync
	lastSync time.Time
	closed   bool
}

// openJournal opens or creates the journal at path for plan id. An
// existing journal for the same plan is read: apply is called for each
// valid record, a torn tail is cut off, and appending continues after it.
// A journal for another plan is refused with ErrJournalMismatch.
func openJournal(path string, id planIdentity, blocks int64, dst blockdiff.Sink, apply func(journalRecord)) (*journal, error) {
	return openJournalBoot(path, id, blocks, dst, bootID(), apply)
}

// bootID names the running boot of the machine: the SHA-256 of Linux's
// random boot_id, or zero (unknown, never equal) elsewhere.
func bootID() blockdiff.Digest {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil || len(b) == 0 {
		return blockdiff.Digest{}
	}
	return sha256.Sum256(b)
}

// openJournalBoot is openJournal in boot boot (tests pass others).
func openJournalBoot(path string, id planIdentity, blocks int64, dst blockdiff.Sink, boot blockdiff.Digest, apply func(journalRecord)) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("replicate: open journal: %w", err)
	}
	j := &journal{path: path, f: f, lastSync: time.Now(), buf: make([]byte, 0, recSize)}
	if s, ok := dst.(Syncer); ok {
		j.syncer, j.strict = s, true
	}
	fresh, err := j.load(id, blocks, boot, apply)
	if err == nil && fresh {
		err = j.writeHeader(id)
	}
	if err == nil && j.strict {
		err = j.write(&result{index: 0, count: 1, act: actBoot, digest: boot})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// load reads an existing journal; fresh reports that there was none (or
// only a torn header) and a header must be written.
func (j *journal) load(id planIdentity, blocks int64, boot blockdiff.Digest, apply func(journalRecord)) (fresh bool, err error) {
	r := bufio.NewReaderSize(j.f, 64<<10)
	magic, err := r.ReadString('\n')
	if err == io.EOF && strings.HasPrefix(journalMagic, magic) {
		return true, nil // empty, or killed while the header was written
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("replicate: read journal %s: %w", j.path, err)
	}
	if magic != journalMagic {
		return false, fmt.Errorf("replicate: %s is not a blockferry journal: %w; pass another journal path or delete the file", j.path, blockdiff.ErrCorrupt)
	}
	line, err := r.ReadBytes('\n')
	if err == io.EOF {
		return true, nil // torn header: no record was written after it
	}
	if err != nil {
		return false, fmt.Errorf("replicate: read journal %s: %w", j.path, err)
	}
	var got planIdentity
	if err := json.Unmarshal(line, &got); err != nil {
		return false, fmt.Errorf("replicate: journal %s has a corrupt header (%v): %w; delete it to start over", j.path, err, blockdiff.ErrCorrupt)
	}
	if d := got.diff(id); d != "" {
		return false, fmt.Errorf("replicate: journal %s was written for another plan (%s): %w; finish that run with its own arguments, or delete the journal to start over",
			j.path, d, ErrJournalMismatch)
	}
	valid := int64(len(magic) + len(line))
	var (
		rec     [recSize]byte
		legacy  = true // no boot record yet: written without a syncing sink
		segBoot blockdiff.Digest
		pending []journalRecord // strict records not yet covered by a marker
	)
	// endSegment applies or drops the uncovered tail of a strict run.
	endSegment := func() {
		if segBoot == boot && boot != (blockdiff.Digest{}) {
			for _, p := range pending {
				apply(p)
			}
		}
		pending = pending[:0]
	}
	for {
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			break // end, or a torn tail
		}
		jr, ok := decodeRecord(&rec, blocks)
		if !ok {
			break // corrupt tail: everything after it is ignored
		}
		valid += recSize
		switch {
		case jr.act == actBoot:
			endSegment()
			legacy, segBoot = false, jr.digest
		case jr.act == actSynced:
			for _, p := range pending {
				apply(p)
			}
			pending = pending[:0]
		case legacy:
			apply(jr)
		default:
			pending = append(pending, jr)
		}
	}
	endSegment()
	if err := j.f.Truncate(valid); err != nil {
		return false, fmt.Errorf("replicate: cut the torn tail of journal %s: %w", j.path, err)
	}
	if _, err := j.f.Seek(valid, io.SeekStart); err != nil {
		return false, fmt.Errorf("replicate: journal %s: %w", j.path, err)
	}
	return false, nil
}

func (j *journal) writeHeader(id planIdentity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("replicate: journal header: %w", err)
	}
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("replicate: journal %s: %w", j.path, err)
	}
	hdr := append([]byte(journalMagic), append(b, '\n')...)
	if _, err := j.f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("replicate: write journal %s: %w", j.path, err)
	}
	if _, err := j.f.Seek(int64(len(hdr)), io.SeekStart); err != nil {
		return fmt.Errorf("replicate: journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("replicate: sync journal %s: %w", j.path, err)
	}
	// Make the new file's name durable too.
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func encodeRecord(dst []byte, r *result) []byte {
	var rec [recSize]byte
	binary.LittleEndian.PutUint64(rec[0:], uint64(r.index))
	binary.LittleEndian.PutUint32(rec[8:], uint32(r.count))
	rec[12] = byte(r.kind)
	rec[13] = byte(r.act)
	copy(rec[14:], r.digest[:])
	binary.LittleEndian.PutUint32(rec[recSize-4:], crc32.Checksum(rec[:recSize-4], castagnoli))
	return append(dst, rec[:]...)
}

func decodeRecord(rec *[recSize]byte, blocks int64) (journalRecord, bool) {
	if crc32.Checksum(rec[:recSize-4], castagnoli) != binary.LittleEndian.Uint32(rec[recSize-4:]) {
		return journalRecord{}, false
	}
	r := journalRecord{
		index: int64(binary.LittleEndian.Uint64(rec[0:])),
		count: int64(binary.LittleEndian.Uint32(rec[8:])),
		kind:  blockdiff.Kind(rec[12]),
		act:   action(rec[13]),
	}
	copy(r.digest[:], rec[14:])
	if r.act == actSynced || r.act == actBoot {
		return r, true
	}
	if r.index < 0 || r.count <= 0 || r.index+r.count > blocks || r.kind > blockdiff.Hole || r.act > actHashed {
		return journalRecord{}, false
	}
	return r, true
}

// append records r, written at once (a killed process loses nothing it
// reported) and fsynced in batches: every journalBatch records or
// journalEvery.
func (j *journal) append(ctx context.Context, r *result) error {
	if err := j.write(r); err != nil {
		return err
	}
	j.pending++
	if j.pending >= journalBatch || time.Since(j.lastSync) >= journalEvery {
		return j.sync(ctx)
	}
	return nil
}

// write appends one record to the file.
func (j *journal) write(r *result) error {
	j.buf = encodeRecord(j.buf[:0], r)
	if _, err := j.f.Write(j.buf); err != nil {
		return fmt.Errorf("replicate: write journal %s: %w", j.path, err)
	}
	return nil
}

// sync makes every appended record durable. With a syncing sink the sink
// is synced first and a marker then says the records before it are
// covered, so that after a reboot the journal never claims a block a
// power loss could undo.
func (j *journal) sync(ctx context.Context) error {
	if j.closed || j.pending == 0 {
		return nil
	}
	if j.syncer != nil {
		if err := j.syncer.Sync(ctx); err != nil {
			return fmt.Errorf("replicate: sync target before journal: %w", err)
		}
		if err := j.write(&result{index: 0, count: 1, act: actSynced}); err != nil {
			return err
		}
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("replicate: sync journal %s: %w", j.path, err)
	}
	j.pending = 0
	j.lastSync = time.Now()
	return nil
}

// close syncs and closes the journal, keeping the file for a later run.
func (j *journal) close(ctx context.Context) error {
	if j.closed {
		return nil
	}
	err := j.sync(context.WithoutCancel(ctx))
	j.closed = true
	return errors.Join(err, j.f.Close())
}

// remove closes and deletes the journal: the plan is finished.
func (j *journal) remove() error {
	if !j.closed {
		j.closed = true
		j.f.Close()
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replicate: remove finished journal: %w", err)
	}
	return nil
}
