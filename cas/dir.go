package cas

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// Dir is a [Backend] keeping each object as a file under a root directory:
// key "chunks/ab/cd/abcd…" is the file ROOT/chunks/ab/cd/abcd…. Put writes a
// temporary file ".tmp-*" in the destination directory, fsyncs it and
// renames it into place, so readers never see a partial object and several
// processes may write the same directory at once (the last rename wins; a
// chunk's name is its content, so every writer renames the same bytes).
// [Dir.Sync] fsyncs the directories renamed into since the last Sync.
type Dir struct {
	root string

	mu    sync.Mutex
	dirty map[string]struct{} // directories to fsync on Sync
}

var (
	_ Backend = (*Dir)(nil)
	_ Syncer  = (*Dir)(nil)
)

// NewDir returns a [Dir] backend rooted at path, creating the directory
// (and its parents) if it does not exist.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("cas: dir backend: empty path: give the directory that holds the store")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("cas: dir backend: %w", err)
	}
	return OpenDir(path)
}

// OpenDir returns a [Dir] backend rooted at path, which must be an existing
// directory.
func OpenDir(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cas: dir backend: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cas: dir backend %s: %w: %w (create it with cas.NewDir)", abs, blockdiff.ErrNotFound, err)
		}
		return nil, fmt.Errorf("cas: dir backend: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cas: dir backend %s: not a directory", abs)
	}
	return &Dir{root: abs, dirty: make(map[string]struct{})}, nil
}

// Root returns the absolute path of the directory.
func (d *Dir) Root() string { return d.root }

// String returns "dir:" and the root path.
func (d *Dir) String() string { return "dir:" + d.root }

func (d *Dir) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Get returns the object stored under key.
func (d *Dir) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cas: get %s: %w: %w", key, blockdiff.ErrNotFound, err)
		}
		return nil, fmt.Errorf("cas: get %s: %w", key, err)
	}
	return b, nil
}

// Put stores data under key atomically (temporary file, fsync, rename).
func (d *Dir) Put(ctx context.Context, key string, data []byte) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cas: put %s: %w", key, err)
		}
		d.markDirty(filepath.Dir(dir), true)
		f, err = os.CreateTemp(dir, ".tmp-*")
	}
	if err != nil {
		return fmt.Errorf("cas: put %s: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("cas: put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cas: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cas: put %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("cas: put %s: %w", key, err)
	}
	d.markDirty(dir, false)
	return nil
}

// markDirty records dir (and, with up, its ancestors up to the root) as
// needing an fsync.
func (d *Dir) markDirty(dir string, up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		d.dirty[dir] = struct{}{}
		if !up || dir == d.root || !strings.HasPrefix(dir, d.root) {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Sync fsyncs every directory renamed into since the last Sync, making the
// completed Puts durable.
func (d *Dir) Sync(ctx context.Context) error {
	d.mu.Lock()
	dirs := d.dirty
	d.dirty = make(map[string]struct{})
	d.mu.Unlock()
	var errs []error
	for dir := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cas: sync %s: %w", d.root, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// Has reports whether key exists.
func (d *Dir) Has(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("cas: has %s: %w", key, err)
	}
	return fi.Mode().IsRegular(), nil
}

// List calls fn for each object whose key starts with prefix. Temporary
// files of unfinished Puts are not listed.
func (d *Dir) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validPrefix(prefix); err != nil {
		return err
	}
	base := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(base, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking, or no such prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == base {
			return nil
		}
		if strings.HasPrefix(de.Name(), ".") {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if de.IsDir() {
			// Descend only where keys could still match the prefix.
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				return nil
			}
			return filepath.SkipDir
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("cas: list %q: %w", prefix, err)
	}
	return nil
}

// Delete removes key. A missing key is not an error.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cas: delete %s: %w", key, err)
	}
	return nil
}

// removeTemp deletes temporary files of Puts that never finished (a
// crashed writer) last modified before cutoff, and returns how many.
func (d *Dir) removeTemp(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() || !strings.HasPrefix(de.Name(), ".tmp-") {
			return nil
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("cas: remove temporary files under %s: %w", d.root, err)
	}
	return n, nil
}
