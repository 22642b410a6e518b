package cas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// Errors of the store besides the blockdiff sentinels.
var (
	// ErrExists: a snapshot with that name already exists.
	ErrExists = errors.New("already exists")
	// ErrBusy: another process holds a conflicting lock marker (a gc
	// while a backup runs, or the reverse).
	ErrBusy = errors.New("store busy")
)

// DefaultListChunks is the default of [Options.ListChunks]: 65536 chunk
// keys (about 6 MiB of memory in a backup's known set).
const DefaultListChunks = 1 << 16

// Options configure a [Store]. The zero value works.
type Options struct {
	// CompressionLevel is the zstd level chunks are written with, 1 (fast)
	// to 22 (small). 0 means 3; a negative level stores every chunk raw.
	// Chunks that do not shrink are stored raw whatever the level.
	CompressionLevel int

	// Concurrency bounds the backend requests one call runs at once
	// (HasDigests batches, gc deletes, verify reads). 0 means 16.
	Concurrency int

	// CacheDir is a local directory for the digest cache: a file per store
	// listing digests known to be stored, so that a later backup from this
	// machine does not ask the backend about each block. "" means no cache.
	CacheDir string

	// StaleAfter is the age after which a lock marker left by a backup or
	// a gc that crashed is ignored. A running backup rewrites its marker
	// every StaleAfter/4 while it is being used. 0 means 1 hour.
	StaleAfter time.Duration

	// ListChunks bounds the chunk listing a backup makes when it starts:
	// [Store.NewSnapshotSink] lists the chunk keys, up to
	// min(ListChunks, max(volume blocks, 1000)) of them; when the listing
	// ends within that bound, the store is small enough that the sink
	// knows every chunk it holds and treats every other digest as missing
	// without an existence request (a chunk a concurrent backup stores
	// meanwhile is then stored again, which is harmless). On S3 the
	// listing costs one request per 1000 keys. 0 means 65536; a negative
	// value turns the listing off.
	ListChunks int

	// Logger receives debug and info records; nil means silent.
	Logger *slog.Logger
}

// Store is a content-addressed store of volume snapshots on a [Backend].
// See the package documentation for the layout and the rules.
type Store struct {
	b    Backend
	opts Options
	log  *slog.Logger
	c    *codec
	id   string // random ID written at creation, names the digest cache

	bufs sync.Pool // *[]byte encode/decode buffers
}

// storeConfig is the "config" object.
type storeConfig struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	ID      string `json:"id"`
}

const (
	configKey     = "config"
	formatName    = "blockferry-cas"
	formatVersion = 1
	epochKey      = "epoch"
	snapPrefix    = "snapshots/"
	manPrefix     = "manifests/"
	chunkPrefix   = "chunks/"
	lockPrefix    = "locks/"
)

// Open opens the store kept on b, initialising an empty backend (it writes
// the "config" object). It fails when b holds something that is not a
// store of a format this package knows.
func Open(ctx context.Context, b Backend, opts Options) (*Store, error) {
	if b == nil {
		return nil, errors.New("cas: open: nil backend")
	}
	if opts.CompressionLevel > 22 {
		return nil, fmt.Errorf("cas: open: compression level %d: want 1 to 22, 0 for the default, or negative for none", opts.CompressionLevel)
	}
	if opts.Concurrency < 0 || opts.StaleAfter < 0 {
		return nil, fmt.Errorf("cas: open: negative Concurrency (%d) or StaleAfter (%v)", opts.Concurrency, opts.StaleAfter)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 16
	}
	if opts.StaleAfter == 0 {
		opts.StaleAfter = time.Hour
	}
	if opts.ListChunks == 0 {
		opts.ListChunks = DefaultListChunks
	}
	s := &Store{b: b, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	raw, err := b.Get(ctx, configKey)
	var cfg storeConfig
	switch {
	case errors.Is(err, blockdiff.ErrNotFound):
		cfg = storeConfig{Format: formatName, Version: formatVersion, ID: randomHex(16)}
		out, _ := json.Marshal(cfg)
		if err := b.Put(ctx, configKey, out); err != nil {
			return nil, fmt.Errorf("cas: open: create store: %w", err)
		}
		s.log.InfoContext(ctx, "cas: created store", "id", cfg.ID)
	case err != nil:
		return nil, fmt.Errorf("cas: open: %w", err)
	default:
		if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Format != formatName {
			return nil, fmt.Errorf("cas: open: the config object is not a blockferry store's: %w", blockdiff.ErrCorrupt)
		}
		if cfg.Version != formatVersion {
			return nil, fmt.Errorf("cas: open: store format version %d, this build reads version %d: upgrade blockferry", cfg.Version, formatVersion)
		}
	}
	s.id = cfg.ID
	if s.c, err = newCodec(opts.CompressionLevel); err != nil {
		return nil, err
	}
	return s, nil
}

// Backend returns the backend the store was opened on.
func (s *Store) Backend() Backend { return s.b }

// ID returns the store's random identity, fixed when it was created.
func (s *Store) ID() string { return s.id }

// Close releases the store's compressor. It does not close the backend.
func (s *Store) Close() error {
	s.c.close()
	return nil
}

func (s *Store) getBuf() *[]byte {
	if p, ok := s.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (s *Store) putBuf(p *[]byte) {
	if cap(*p) <= blockdiff.MaxBlockSize+64<<10 {
		s.bufs.Put(p)
	}
}

// HasChunk reports whether the store holds the chunk for content d.
func (s *Store) HasChunk(ctx context.Context, d blockdiff.Digest) (bool, error) {
	return s.b.Has(ctx, chunkKey(d))
}

// ReadChunk fetches the chunk for content d, decodes it into buf (growing
// it when too small) and verifies that it hashes to d. A missing chunk
// wraps [blockdiff.ErrNotFound]; a corrupt one [blockdiff.ErrChecksum].
func (s *Store) ReadChunk(ctx context.Context, d blockdiff.Digest, buf []byte) ([]byte, error) {
	raw, err := s.b.Get(ctx, chunkKey(d))
	if err != nil {
		return nil, fmt.Errorf("cas: chunk %s: %w", d, err)
	}
	return s.c.decode(d, raw, buf)
}

// putChunk encodes block (whose digest is d) and stores it. It returns the
// stored size.
func (s *Store) putChunk(ctx context.Context, d blockdiff.Digest, block []byte) (int, error) {
	p := s.getBuf()
	defer s.putBuf(p)
	*p = s.c.encode(*p, block)
	if err := s.b.Put(ctx, chunkKey(d), *p); err != nil {
		return 0, fmt.Errorf("cas: store chunk %s: %w", d, err)
	}
	return len(*p), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// epoch returns the current gc epoch ("" before the first gc deleted anything).
func (s *Store) epoch(ctx context.Context) (string, error) {
	b, err := s.b.Get(ctx, epochKey)
	if errors.Is(err, blockdiff.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cas: read gc epoch: %w", err)
	}
	return string(b), nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+=@:-]{0,199}$`)

// ValidName reports an error unless name is a usable snapshot name: 1 to
// 200 characters from letters, digits and "._+=@:-", starting with a
// letter or digit.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("cas: snapshot name %q: use 1 to 200 letters, digits or ._+=@:- starting with a letter or digit", name)
	}
	return nil
}

// lockInfo is the body of a lock marker.
type lockInfo struct {
	Kind string    `json:"kind"`
	Host string    `json:"host"`
	PID  int       `json:"pid"`
	Time time.Time `json:"time"`
	What string    `json:"what,omitempty"`
}

func (s *Store) putLock(ctx context.Context, key, kind, what string) error {
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockInfo{Kind: kind, Host: host, PID: os.Getpid(), Time: time.Now().UTC(), What: what})
	if err := s.b.Put(ctx, key, b); err != nil {
		return fmt.Errorf("cas: write lock marker %s: %w", key, err)
	}
	return nil
}

// freshLocks returns the keys of lock markers with the given key prefix
// (under locks/) younger than StaleAfter, except self.
func (s *Store) freshLocks(ctx context.Context, prefix, self string) ([]string, error) {
	var keys []string
	cutoff := time.Now().Add(-s.opts.StaleAfter)
	err := s.b.List(ctx, lockPrefix+prefix, func(oi ObjectInfo) error {
		if oi.Key != self && oi.ModTime.After(cutoff) {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cas: list lock markers: %w", err)
	}
	return keys, nil
}

// acquire writes lock marker key, then looks for fresh markers with any of
// the conflicting prefixes. On a conflict it removes its own marker and
// returns an error wrapping [ErrBusy]. Because each side writes before it
// looks, and the backends are read-after-write consistent, two conflicting
// parties can never both proceed.
func (s *Store) acquire(ctx context.Context, key, kind, what string, conflicts ...string) error {
	if err := s.putLock(ctx, key, kind, what); err != nil {
		return err
	}
	for _, p := range conflicts {
		others, err := s.freshLocks(ctx, p, key)
		if err == nil && len(others) > 0 {
			err = fmt.Errorf("cas: %s: another process holds %s: %w (wait for it to finish, or remove the marker if its process is gone; markers older than %v are ignored)", kind, others[0], ErrBusy, s.opts.StaleAfter)
		}
		if err != nil {
			return errors.Join(err, s.b.Delete(context.WithoutCancel(ctx), key))
		}
	}
	return nil
}
