package blockdiff

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/blockferry/blockferry/hashing"
)

// Format constants; the layout is described byte by byte in the package
// documentation under "Manifest format".
const (
	// FormatVersion is the manifest format version this package writes
	// and reads.
	FormatVersion = 1

	// MaxOriginLen is the longest [Manifest.Origin] that can be encoded, in
	// bytes.
	MaxOriginLen = 4096

	headerFixedLen = 34        // magic 8, version 2, flags 2, block size 4, size 8, count 8, origin length 2
	maxDataRun     = 4096      // digests in one data record
	chunkTarget    = 128 << 10 // a chunk is flushed once its records reach this many bytes
	maxChunk       = 1 << 20   // decoded bytes in one chunk, a format limit
	maxFrame       = maxChunk + maxChunk>>7 + 1024
	trailerLen     = sha256.Size
	maxVolumeSize  = 1 << 62
)

// magic opens every encoded manifest. Like PNG's, it holds a non-ASCII byte
// and CR LF / LF so that text-mode transfers are detected.
var magic = [8]byte{0x89, 'B', 'F', 'M', '\r', '\n', 0x1a, '\n'}

// ManifestPrefixLen is how many leading bytes [IsManifest] needs to
// recognise an encoded manifest: the length of its magic.
const ManifestPrefixLen = len(magic)

// IsManifest reports whether prefix, the first bytes of a file or stream,
// starts like an encoded manifest (its magic, see "Manifest format"). It
// needs [ManifestPrefixLen] bytes and reports false for fewer. It checks
// only the magic: [NewReader] validates the rest.
func IsManifest(prefix []byte) bool {
	return len(prefix) >= ManifestPrefixLen && [ManifestPrefixLen]byte(prefix) == magic
}

// The codec is shared: EncodeAll and DecodeAll are safe for concurrent use.
// Concurrency 1 and a 1 MiB memory limit keep each call's memory bounded.
var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
	codecErr  error
)

func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		encoder, codecErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(maxChunk),
			zstd.WithLowerEncoderMem(true),
		)
		if codecErr != nil {
			return
		}
		decoder, codecErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxChunk),
			zstd.WithDecoderMaxWindow(maxChunk),
			zstd.WithDecoderLowmem(true),
		)
	})
	if codecErr != nil {
		return nil, nil, fmt.Errorf("blockdiff: zstd codec: %w", codecErr)
	}
	return encoder, decoder, nil
}

// errWriterClosed marks a Writer after a successful Close.
var errWriterClosed = fmt.Errorf("blockdiff: manifest writer: %w", ErrClosed)

// Writer encodes a manifest to an io.Writer as a stream: entries are
// appended in index order and memory stays bounded (about 1 MiB) whatever
// the volume size. Writer keeps its first error and returns it from every
// later call. A Writer is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	h    hash.Hash
	enc  *zstd.Encoder
	g    Geometry
	n    int64 // blocks in the volume
	next int64 // index of the next entry to append
	off  int64 // bytes written

	runKind Kind
	runLen  int64
	digs    []Digest // digests of the pending data run

	buf []byte // records of the chunk being built
	out []byte // length prefix + compressed chunk

	id  Digest
	err error
}

// NewWriter writes the header of a manifest of geometry g to w and returns
// a Writer for its entries. origin is stored as [Manifest.Origin]; it must
// be valid UTF-8 of at most [MaxOriginLen] bytes.
func NewWriter(w io.Writer, g Geometry, origin string) (*Writer, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("blockdiff: new manifest writer: %w", err)
	}
	if g.Size > maxVolumeSize {
		return nil, fmt.Errorf("blockdiff: new manifest writer: volume size %d exceeds the format's limit of 2^62 bytes: %w", g.Size, ErrGeometry)
	}
	if len(origin) > MaxOriginLen || !utf8.ValidString(origin) {
		return nil, fmt.Errorf("blockdiff: new manifest writer: origin must be valid UTF-8 of at most %d bytes, got %d bytes", MaxOriginLen, len(origin))
	}
	enc, _, err := codec()
	if err != nil {
		return nil, err
	}
	mw := &Writer{w: w, h: sha256.New(), enc: enc, g: g, n: g.Blocks()}
	hdr := make([]byte, headerFixedLen, headerFixedLen+len(origin))
	copy(hdr, magic[:])
	binary.LittleEndian.PutUint16(hdr[8:], FormatVersion)
	binary.LittleEndian.PutUint16(hdr[10:], 0)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(g.BlockSize))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(g.Size))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(mw.n))
	binary.LittleEndian.PutUint16(hdr[32:], uint16(len(origin)))
	hdr = append(hdr, origin...)
	if err := mw.write(hdr); err != nil {
		return nil, err
	}
	return mw, nil
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.off += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("blockdiff: write manifest at byte %d: %w", w.off, err)
	}
	return w.err
}

// Append adds the next entry. Entries must come in index order, from 0 to
// Geometry.Blocks()-1; any other index is an error wrapping
// [ErrOutOfRange]. The digest of a Zero or Hole entry is not stored.
func (w *Writer) Append(e Entry) error {
	if w.err != nil {
		return w.err
	}
	if e.Index != w.next || e.Index >= w.n {
		w.err = fmt.Errorf("blockdiff: manifest writer: got block %d, want block %d of %d (entries must be appended once each, in index order): %w",
			e.Index, w.next, w.n, ErrOutOfRange)
		return w.err
	}
	if e.Kind > Hole {
		w.err = fmt.Errorf("blockdiff: manifest writer: block %d has invalid kind %d", e.Index, e.Kind)
		return w.err
	}
	w.add(e.Kind, &e.Digest)
	return w.err
}

func (w *Writer) add(k Kind, d *Digest) {
	if w.runLen > 0 && (k != w.runKind || (k == Data && w.runLen == maxDataRun)) {
		w.flushRun()
	}
	w.runKind = k
	w.runLen++
	w.next++
	if k == Data {
		w.digs = append(w.digs, *d)
	}
}

// appendRun adds count entries of kind k; for Data, ds holds their digests.
func (w *Writer) appendRun(k Kind, count int64, ds []Digest) {
	if k == Data {
		for i := range ds {
			w.add(Data, &ds[i])
		}
		return
	}
	if w.runLen > 0 && k != w.runKind {
		w.flushRun()
	}
	w.runKind = k
	w.runLen += count
	w.next += count
}

func (w *Writer) flushRun() {
	if w.runLen == 0 || w.err != nil {
		return
	}
	w.buf = append(w.buf, byte(w.runKind))
	w.buf = binary.AppendUvarint(w.buf, uint64(w.runLen))
	for i := range w.digs {
		w.buf = append(w.buf, w.digs[i][:]...)
	}
	w.digs = w.digs[:0]
	w.runLen = 0
	if len(w.buf) >= chunkTarget {
		w.flushChunk()
	}
}

func (w *Writer) flushChunk() {
	if len(w.buf) == 0 || w.err != nil {
		return
	}
	w.out = append(w.out[:0], 0, 0, 0, 0)
	w.out = w.enc.EncodeAll(w.buf, w.out)
	binary.LittleEndian.PutUint32(w.out, uint32(len(w.out)-4))
	w.buf = w.buf[:0]
	w.write(w.out)
}

// Close writes the last chunk and the trailer. It returns an error wrapping
// [ErrOutOfRange] if not every block was appended. Close does not close the
// underlying io.Writer. Calling Close again after a successful Close
// returns nil.
func (w *Writer) Close() error {
	if w.err == errWriterClosed {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	if w.next != w.n {
		w.err = fmt.Errorf("blockdiff: manifest writer closed after %d of %d blocks: append every block before Close: %w",
			w.next, w.n, ErrOutOfRange)
		return w.err
	}
	w.flushRun()
	w.flushChunk()
	w.write([]byte{0, 0, 0, 0})
	if w.err != nil {
		return w.err
	}
	sum := w.h.Sum(nil)
	if err := w.write(sum); err != nil {
		return err
	}
	w.h.Sum(w.id[:0])
	w.err = errWriterClosed
	return nil
}

// ID returns the manifest's ID, the SHA-256 of its whole encoding
// (trailer included, so it equals `sha256sum` of a manifest file). It is
// valid after a successful Close and the zero Digest before.
func (w *Writer) ID() Digest { return w.id }

// Reader decodes a manifest from an io.Reader as a stream, holding one
// chunk (at most about 2 MiB with its compressed form) in memory whatever
// the volume size. It never
// reads past the trailer, so a manifest may be embedded in a longer stream.
//
// Entries are checked against the chunk checksums as they are decoded, but
// the manifest as a whole is only verified when Next returns io.EOF; treat
// what was read as provisional until then. Reader keeps its first error.
// A Reader is not safe for concurrent use. *Reader implements [Iterator].
type Reader struct {
	r    io.Reader
	h    hash.Hash
	name string // for messages: "" or " <path>"
	off  int64  // bytes consumed

	g      Geometry
	origin string
	n      int64 // blocks
	next   int64 // index of the next entry

	buf  []byte // decoded records of the current chunk
	pos  int
	comp []byte

	runKind Kind
	runLeft int64
	runDigs []byte // remaining digests of the current data run, inside buf

	zeroFull, zeroLast Digest
	id                 Digest
	err                error
}

var _ Iterator = (*Reader)(nil)

// NewReader reads and validates a manifest header from r. Errors about the
// content wrap [ErrCorrupt].
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(r, "")
}

func newReader(r io.Reader, name string) (*Reader, error) {
	if _, _, err := codec(); err != nil {
		return nil, err
	}
	mr := &Reader{r: r, h: sha256.New(), name: name}
	var hdr [headerFixedLen]byte
	if err := mr.readFull(hdr[:], "header"); err != nil {
		return nil, err
	}
	if [8]byte(hdr[:8]) != magic {
		return nil, fmt.Errorf("blockdiff: manifest%s is not a blockferry manifest (it starts with %q, want %q): check the path or re-create it with blockferry hash: %w",
			name, hdr[:8], magic[:], ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(hdr[8:]); v != FormatVersion {
		return nil, fmt.Errorf("blockdiff: manifest%s has format version %d, this build reads version %d: upgrade blockferry or re-create it with blockferry hash: %w",
			name, v, FormatVersion, ErrCorrupt)
	}
	if f := binary.LittleEndian.Uint16(hdr[10:]); f != 0 {
		return nil, mr.corrupt(10, fmt.Sprintf("unknown header flags %#x", f))
	}
	bs := binary.LittleEndian.Uint32(hdr[12:])
	size := binary.LittleEndian.Uint64(hdr[16:])
	count := binary.LittleEndian.Uint64(hdr[24:])
	if size > maxVolumeSize {
		return nil, mr.corrupt(16, fmt.Sprintf("volume size %d is out of range", size))
	}
	mr.g = Geometry{Size: int64(size), BlockSize: int(bs)}
	if err := mr.g.Validate(); err != nil {
		return nil, fmt.Errorf("blockdiff: manifest%s header: %w: re-create it with blockferry hash: %w", name, err, ErrCorrupt)
	}
	mr.n = mr.g.Blocks()
	if count != uint64(mr.n) {
		return nil, mr.corrupt(24, fmt.Sprintf("block count %d does not match %s", count, mr.g))
	}
	olen := int(binary.LittleEndian.Uint16(hdr[32:]))
	if olen > MaxOriginLen {
		return nil, mr.corrupt(32, fmt.Sprintf("origin length %d exceeds %d", olen, MaxOriginLen))
	}
	if olen > 0 {
		ob := make([]byte, olen)
		if err := mr.readFull(ob, "origin"); err != nil {
			return nil, err
		}
		if !utf8.Valid(ob) {
			return nil, mr.corrupt(headerFixedLen, "origin is not valid UTF-8")
		}
		mr.origin = string(ob)
	}
	mr.zeroFull = hashing.ZeroDigest(mr.g.BlockSize)
	mr.zeroLast = hashing.ZeroDigest(mr.g.BlockLen(mr.n - 1))
	return mr, nil
}

func (r *Reader) corrupt(at int64, what string) error {
	return fmt.Errorf("blockdiff: manifest%s is corrupt at byte %d: %s: re-create it with blockferry hash: %w", r.name, at, what, ErrCorrupt)
}

// readFull reads len(p) bytes, hashing them.
func (r *Reader) readFull(p []byte, what string) error {
	n, err := io.ReadFull(r.r, p)
	r.h.Write(p[:n])
	r.off += int64(n)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("blockdiff: manifest%s is truncated at byte %d (in the %s): re-create it with blockferry hash: %w",
			r.name, r.off, what, ErrCorrupt)
	case err != nil:
		return fmt.Errorf("blockdiff: read manifest%s at byte %d: %w", r.name, r.off, err)
	}
	return nil
}

// Geometry returns the volume geometry from the header.
func (r *Reader) Geometry() Geometry { return r.g }

// Origin returns the origin string from the header.
func (r *Reader) Origin() string { return r.origin }

// ID returns the manifest's ID (see [Writer.ID]). It is valid once Next
// has returned io.EOF and the zero Digest before.
func (r *Reader) ID() Digest { return r.id }

// Next returns the next entry. It returns io.EOF only after the last entry
// and a verified trailer; truncation and corruption give an error wrapping
// [ErrCorrupt].
func (r *Reader) Next() (Entry, error) {
	if r.runLeft == 0 {
		if err := r.fill(); err != nil {
			return Entry{}, err
		}
	}
	e := Entry{Index: r.next, Kind: r.runKind}
	switch r.runKind {
	case Data:
		e.Digest = Digest(r.runDigs[:DigestSize])
		r.runDigs = r.runDigs[DigestSize:]
	default:
		e.Digest = r.zeroFull
		if r.next == r.n-1 {
			e.Digest = r.zeroLast
		}
	}
	r.runLeft--
	r.next++
	return e, nil
}

// fill loads the next run, or finishes the stream when every block was
// read. It returns r.err once set (io.EOF after a verified end).
func (r *Reader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.next == r.n {
		r.err = r.finish()
		return r.err
	}
	for r.pos == len(r.buf) {
		last, err := r.readChunk()
		if err != nil {
			r.err = err
			return err
		}
		if last {
			r.err = r.corrupt(r.off-4, fmt.Sprintf("the body ends after %d of %d blocks", r.next, r.n))
			return r.err
		}
	}
	at := r.off // for messages: the chunk that holds the record
	k := Kind(r.buf[r.pos])
	if k > Hole {
		r.err = r.corrupt(at, fmt.Sprintf("record at block %d has invalid kind %d", r.next, k))
		return r.err
	}
	cnt, vn := binary.Uvarint(r.buf[r.pos+1:])
	if vn <= 0 || cnt == 0 || cnt > uint64(r.n-r.next) || (k == Data && cnt > maxDataRun) {
		r.err = r.corrupt(at, fmt.Sprintf("record at block %d has invalid length", r.next))
		return r.err
	}
	r.pos += 1 + vn
	if k == Data {
		dl := int(cnt) * DigestSize
		if len(r.buf)-r.pos < dl {
			r.err = r.corrupt(at, fmt.Sprintf("data record at block %d crosses the chunk end", r.next))
			return r.err
		}
		r.runDigs = r.buf[r.pos : r.pos+dl]
		r.pos += dl
	}
	r.runKind, r.runLeft = k, int64(cnt)
	return nil
}

// readChunk reads and decodes the next chunk into r.buf; last reports the
// end marker.
func (r *Reader) readChunk() (last bool, err error) {
	var lb [4]byte
	if err := r.readFull(lb[:], "chunk length"); err != nil {
		return false, err
	}
	at := r.off - 4
	l := binary.LittleEndian.Uint32(lb[:])
	if l == 0 {
		return true, nil
	}
	if l > maxFrame {
		return false, r.corrupt(at, fmt.Sprintf("chunk length %d exceeds %d", l, maxFrame))
	}
	// Grow the buffer as bytes arrive, not by the claimed length, so a
	// short input cannot make us allocate a whole frame.
	r.comp = r.comp[:0]
	for len(r.comp) < int(l) {
		step := min(int(l)-len(r.comp), max(len(r.comp), 64<<10))
		r.comp = slices.Grow(r.comp, step)
		p := r.comp[len(r.comp) : len(r.comp)+step]
		if err := r.readFull(p, "body"); err != nil {
			return false, err
		}
		r.comp = r.comp[:len(r.comp)+step]
	}
	_, dec, err := codec()
	if err != nil {
		return false, err
	}
	r.buf, err = dec.DecodeAll(r.comp, r.buf[:0])
	if err != nil {
		return false, r.corrupt(at, fmt.Sprintf("chunk does not decompress (%v)", err))
	}
	if len(r.buf) == 0 || len(r.buf) > maxChunk {
		return false, r.corrupt(at, fmt.Sprintf("chunk holds %d bytes, want 1 to %d", len(r.buf), maxChunk))
	}
	r.pos = 0
	return false, nil
}

// finish checks the end marker and the trailer, returning io.EOF when the
// manifest is intact.
func (r *Reader) finish() error {
	if r.pos != len(r.buf) {
		return r.corrupt(r.off, fmt.Sprintf("%d bytes of records follow the last block", len(r.buf)-r.pos))
	}
	last, err := r.readChunk()
	if err != nil {
		return err
	}
	if !last {
		return r.corrupt(r.off, "a chunk follows the last block")
	}
	want := r.h.Sum(nil)
	var got [trailerLen]byte
	if err := r.readFull(got[:], "trailer"); err != nil {
		return err
	}
	if string(got[:]) != string(want) {
		return fmt.Errorf("blockdiff: manifest%s checksum mismatch (trailer %x, content hashes to %x): the file is corrupt; re-create it with blockferry hash: %w",
			r.name, got[:8], want[:8], ErrCorrupt)
	}
	r.h.Sum(r.id[:0])
	return io.EOF
}

// nextRun returns the rest of the current run (loading the next one if
// needed): count entries of kind k, with their digests in digs for Data.
// digs is valid until the next call.
func (r *Reader) nextRun() (k Kind, count int64, digs []byte, err error) {
	if r.runLeft == 0 {
		if err := r.fill(); err != nil {
			return 0, 0, nil, err
		}
	}
	k, count, digs = r.runKind, r.runLeft, r.runDigs
	r.next += count
	r.runLeft, r.runDigs = 0, nil
	return k, count, digs, nil
}

// WriteTo writes m's encoding to w and returns the bytes written. The
// encoding is deterministic: equal manifests with equal origins encode to
// the same bytes.
func (m *Manifest) WriteTo(w io.Writer) (int64, error) {
	mw, err := NewWriter(w, m.geom, m.Origin)
	if err != nil {
		return 0, err
	}
	if err := m.encode(mw); err != nil {
		return mw.off, err
	}
	err = mw.Close()
	return mw.off, err
}

func (m *Manifest) encode(mw *Writer) error {
	n := int64(len(m.kinds))
	for i := int64(0); i < n && mw.err == nil; {
		k := m.kinds[i]
		j := i + 1
		lim := n
		if k == Data { // stop at the page end so digests come from one page
			lim = min(n, (i/digestPage+1)*digestPage)
		}
		for j < lim && m.kinds[j] == k {
			j++
		}
		if k == Data {
			p := m.pages[i/digestPage]
			mw.appendRun(Data, j-i, p[i%digestPage:i%digestPage+(j-i)])
		} else if k > Hole {
			return fmt.Errorf("blockdiff: encode manifest: block %d has invalid kind %d", i, k)
		} else {
			mw.appendRun(k, j-i, nil)
		}
		i = j
	}
	return mw.err
}

// ID returns the manifest's ID: the SHA-256 of its encoding (see
// [Writer.ID]). It encodes m without keeping the bytes.
func (m *Manifest) ID() (Digest, error) {
	mw, err := NewWriter(io.Discard, m.geom, m.Origin)
	if err != nil {
		return Digest{}, err
	}
	if err := m.encode(mw); err != nil {
		return Digest{}, err
	}
	if err := mw.Close(); err != nil {
		return Digest{}, err
	}
	return mw.ID(), nil
}

// ReadManifest decodes a whole manifest from r into memory and checks that
// r ends right after it. Memory grows with the entries actually decoded,
// never with the counts the header claims; a manifest of n blocks, d of
// them data, needs about n + 32*d bytes. A short run record may stand for
// many hole blocks, so a small but valid manifest can still describe a huge
// volume: with input from an untrusted place, check [NewReader]'s
// Geometry first, or walk it with a [Reader], whose memory does not depend
// on the volume. Errors about the content wrap [ErrCorrupt].
func ReadManifest(r io.Reader) (*Manifest, error) {
	m, _, err := readManifest(r, "")
	return m, err
}

// readManifest also returns how many blocks were decoded, for the fuzz
// test's allocation bound.
func readManifest(r io.Reader, name string) (*Manifest, int64, error) {
	mr, err := newReader(r, name)
	if err != nil {
		return nil, 0, err
	}
	m := &Manifest{Origin: mr.origin, geom: mr.g}
	m.initZero()
	for {
		k, cnt, digs, err := mr.nextRun()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, int64(len(m.kinds)), err
		}
		m.growRun(k, cnt, digs)
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n != 0 {
		return nil, int64(len(m.kinds)), fmt.Errorf("blockdiff: manifest%s has extra bytes after its trailer at byte %d: %w", name, mr.off, ErrCorrupt)
	}
	return m, int64(len(m.kinds)), nil
}

// ReadManifestFile reads the manifest file at path (see [ReadManifest]). A
// missing file gives an error wrapping [ErrNotFound].
func ReadManifestFile(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blockdiff: read manifest: %w: %w", ErrNotFound, err)
		}
		return nil, fmt.Errorf("blockdiff: read manifest: %w", err)
	}
	defer f.Close()
	m, _, err := readManifest(f, " "+path)
	return m, err
}

// WriteManifestFile writes m to path atomically: it writes a temporary file
// in the same directory, syncs it, renames it over path and syncs the
// directory, so path holds either the old or the new manifest, whole.
func WriteManifestFile(path string, m *Manifest) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("blockdiff: write manifest %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("blockdiff: write manifest %s: %w", path, err)
		}
	}()
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if _, err = m.WriteTo(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
