package cas

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// Memory is a [Backend] holding objects in memory, for tests and examples.
// Its zero value is not usable; call [NewMemory].
type Memory struct {
	mu   sync.RWMutex
	objs map[string]memObject
	now  func() time.Time
}

type memObject struct {
	data []byte
	mod  time.Time
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{objs: make(map[string]memObject), now: time.Now}
}

// String returns "memory".
func (m *Memory) String() string { return "memory" }

// Get returns a copy of the object stored under key.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	o, ok := m.objs[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("cas: get %s: %w", key, blockdiff.ErrNotFound)
	}
	return append([]byte(nil), o.data...), nil
}

// Put stores a copy of data under key.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidKey(key); err != nil {
		return err
	}
	o := memObject{data: append([]byte(nil), data...), mod: m.now()}
	m.mu.Lock()
	m.objs[key] = o
	m.mu.Unlock()
	return nil
}

// Has reports whether key exists.
func (m *Memory) Has(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := ValidKey(key); err != nil {
		return false, err
	}
	m.mu.RLock()
	_, ok := m.objs[key]
	m.mu.RUnlock()
	return ok, nil
}

// List calls fn for each object whose key starts with prefix, in ascending
// key order, on a snapshot of the keys taken when List starts.
func (m *Memory) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validPrefix(prefix); err != nil {
		return err
	}
	var infos []ObjectInfo
	m.mu.RLock()
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	m.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, oi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key. A missing key is not an error.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}
