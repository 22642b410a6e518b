package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/blockferry/blockferry/blockdiff"
)

// digestCache is the local file of digests known to be in one store at
// one gc epoch: DIR/<storeID>-<epoch>.digests, 32 bytes per digest,
// appended at each successful commit. A gc that deletes anything changes
// the epoch, so a cache that might name deleted chunks is never used.
type digestCache struct {
	path string
}

func openDigestCache(dir, storeID, epoch string, into map[blockdiff.Digest]struct{}) (*digestCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if epoch == "" {
		epoch = "0"
	}
	c := &digestCache{path: filepath.Join(dir, storeID+"-"+epoch+".digests")}
	// Forget caches of this store's earlier epochs.
	old, _ := filepath.Glob(filepath.Join(dir, storeID+"-*.digests"))
	for _, p := range old {
		if p != c.path && strings.HasPrefix(filepath.Base(p), storeID+"-") {
			os.Remove(p)
		}
	}
	b, err := os.ReadFile(c.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(b)%blockdiff.DigestSize != 0 { // a torn record: start over
		os.Remove(c.path)
		b = nil
	}
	for len(b) > 0 {
		into[blockdiff.Digest(b[:blockdiff.DigestSize])] = struct{}{}
		b = b[blockdiff.DigestSize:]
	}
	return c, nil
}

func (c *digestCache) append(ds []blockdiff.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cas: digest cache: %w", err)
	}
	buf := make([]byte, 0, len(ds)*blockdiff.DigestSize)
	for _, d := range ds {
		buf = append(buf, d[:]...)
	}
	_, err = f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cas: digest cache %s: %w", c.path, err)
	}
	return nil
}
