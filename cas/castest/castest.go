// Package castest holds the conformance suite every [cas.Backend] must pass
// and a fault-injecting backend wrapper for tests.
//
// Glossary: a backend is flat key → bytes storage (see [cas.Backend]); a
// fault is a planned failure of the Nth call of one operation, or corrupted
// data returned by Get.
//
// # Errors
//
// [Faulty] returns the error it was told to, wrapped with the operation and
// key; corrupt Gets return no error but altered bytes.
//
// # Concurrency
//
// [TestBackend] runs its checks sequentially except where it tests
// concurrency itself. [Faulty] is safe for concurrent use.
package castest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
)

// TestBackend runs the conformance suite on fresh backends made by
// newBackend, one per subtest. Each backend must start empty.
func TestBackend(t *testing.T, newBackend func(t *testing.T) cas.Backend) {
	ctx := context.Background()
	data := func(seed uint64, n int) []byte {
		var key [32]byte
		key[0], key[1] = byte(seed), byte(seed>>8)
		b := make([]byte, n)
		rand.NewChaCha8(key).Read(b)
		return b
	}

	t.Run("PutGetHas", func(t *testing.T) {
		b := newBackend(t)
		want := data(1, 1000)
		if err := b.Put(ctx, "a/b/obj", want); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := b.Get(ctx, "a/b/obj")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get returned %d bytes differing from the %d put", len(got), len(want))
		}
		for _, tc := range []struct {
			key  string
			want bool
		}{{"a/b/obj", true}, {"a/b/other", false}, {"a/b", false}, {"zz", false}} {
			has, err := b.Has(ctx, tc.key)
			if err != nil {
				t.Fatalf("Has(%q): %v", tc.key, err)
			}
			if has != tc.want {
				t.Errorf("Has(%q): got %v, want %v", tc.key, has, tc.want)
			}
		}
	})

	t.Run("EmptyObject", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Put(ctx, "empty", nil); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := b.Get(ctx, "empty")
		if err != nil || len(got) != 0 {
			t.Fatalf("Get: got %d bytes, %v; want 0 bytes, nil", len(got), err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		b := newBackend(t)
		_, err := b.Get(ctx, "missing/key")
		if !errors.Is(err, blockdiff.ErrNotFound) {
			t.Fatalf("Get missing: got %v, want an error wrapping blockdiff.ErrNotFound", err)
		}
		if errors.Unwrap(err) == nil && err == blockdiff.ErrNotFound {
			t.Errorf("Get missing: bare sentinel %v, want it wrapped with the key", err)
		}
		if err := b.Delete(ctx, "missing/key"); err != nil {
			t.Errorf("Delete missing: got %v, want nil", err)
		}
	})

	t.Run("BadKeys", func(t *testing.T) {
		b := newBackend(t)
		for _, k := range []string{"", "/abs", "a//b", "../up", "a/./b", "a/.hidden", "trail/"} {
			if err := b.Put(ctx, k, []byte("x")); err == nil {
				t.Errorf("Put(%q): got nil, want an error", k)
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		b := newBackend(t)
		v1, v2 := data(2, 300), data(3, 200)
		for _, v := range [][]byte{v1, v1, v2} {
			if err := b.Put(ctx, "k", v); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		got, err := b.Get(ctx, "k")
		if err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("Get after overwrite: got %d bytes (%v), want the last %d bytes put", len(got), err, len(v2))
		}
		n := 0
		if err := b.List(ctx, "", func(cas.ObjectInfo) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("List after 3 puts of one key: got %d objects, want 1", n)
		}
	})

	t.Run("ConcurrentSameKey", func(t *testing.T) {
		b := newBackend(t)
		want := data(4, 64<<10)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				if err := b.Put(ctx, "chunks/ab/cd/same", want); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Put: %v", err)
		}
		got, err := b.Get(ctx, "chunks/ab/cd/same")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get after concurrent puts: got %d bytes (%v), want %d identical bytes", len(got), err, len(want))
		}
		var keys []string
		if err := b.List(ctx, "chunks/", func(oi cas.ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys, []string{"chunks/ab/cd/same"}) {
			t.Errorf("List after concurrent puts: got %q, want exactly the one key (no temporary files)", keys)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		b := newBackend(t)
		keys := []string{"chunks/00/11/a", "chunks/00/12/b", "chunks/01/00/c", "snapshots/x", "snapshots/y", "snapshotsz"}
		for i, k := range keys {
			if err := b.Put(ctx, k, data(uint64(10+i), 10+i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", keys},
			{"chunks/", keys[:3]},
			{"chunks/00/", keys[:2]},
			{"chunks/00/1", keys[:2]},
			{"chunks/00/11/", keys[:1]},
			{"snapshots/", keys[3:5]},
			{"snapshots", keys[3:]},
			{"nothing/", nil},
			{"chunks/02", nil},
		} {
			t.Run(tc.prefix, func(t *testing.T) {
				var got []string
				err := b.List(ctx, tc.prefix, func(oi cas.ObjectInfo) error {
					got = append(got, oi.Key)
					want := int64(10 + slices.Index(keys, oi.Key))
					if oi.Size != want {
						t.Errorf("List %q: size: got %d, want %d", oi.Key, oi.Size, want)
					}
					if oi.ModTime.IsZero() {
						t.Errorf("List %q: zero ModTime", oi.Key)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("List(%q): got %q, want %q", tc.prefix, got, tc.want)
				}
			})
		}
		stop := errors.New("stop")
		n := 0
		err := b.List(ctx, "", func(cas.ObjectInfo) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("List with fn error: got %v after %d calls, want the fn error after 1 call", err, n)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		b := newBackend(t)
		for _, k := range []string{"d/1", "d/2"} {
			if err := b.Put(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Delete(ctx, "d/1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if has, _ := b.Has(ctx, "d/1"); has {
			t.Errorf("Has after Delete: got true, want false")
		}
		if _, err := b.Get(ctx, "d/1"); !errors.Is(err, blockdiff.ErrNotFound) {
			t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
		}
		if got, err := b.Get(ctx, "d/2"); err != nil || string(got) != "d/2" {
			t.Errorf("Get of the other key: got %q, %v; want %q", got, err, "d/2")
		}
	})

	t.Run("Large", func(t *testing.T) {
		b := newBackend(t)
		want := data(5, 17<<20)
		if err := b.Put(ctx, "big", want); err != nil {
			t.Fatalf("Put 17 MiB: %v", err)
		}
		got, err := b.Get(ctx, "big")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get 17 MiB: got %d bytes (%v), want %d identical bytes", len(got), err, len(want))
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		checks := map[string]error{}
		_, checks["Get"] = b.Get(cctx, "k")
		checks["Put"] = b.Put(cctx, "k2", []byte("v"))
		_, checks["Has"] = b.Has(cctx, "k")
		checks["List"] = b.List(cctx, "", func(cas.ObjectInfo) error { return nil })
		checks["Delete"] = b.Delete(cctx, "k")
		for op, err := range checks {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with canceled ctx: got %v, want context.Canceled", op, err)
			}
		}
		if has, err := b.Has(ctx, "k2"); err != nil || has {
			t.Errorf("canceled Put stored the object: Has got %v, %v; want false", has, err)
		}
		if has, err := b.Has(ctx, "k"); err != nil || !has {
			t.Errorf("canceled Delete removed the object: Has got %v, %v; want true", has, err)
		}
	})
}

// Op names a [cas.Backend] method for [Faulty].
type Op string

// The operations [Faulty] counts and can fail.
const (
	OpGet    Op = "get"
	OpPut    Op = "put"
	OpHas    Op = "has"
	OpList   Op = "list"
	OpDelete Op = "delete"
)

// Faulty wraps a [cas.Backend], counts calls per operation, and injects
// faults: [Faulty.FailNth] makes the Nth call of an operation fail, and
// [Faulty.CorruptGets] makes Get return altered bytes for matching keys.
type Faulty struct {
	b cas.Backend

	mu      sync.Mutex
	calls   map[Op]int
	fails   map[Op]map[int]error
	corrupt func(key string) bool
	puts    []string
}

var (
	_ cas.Backend   = (*Faulty)(nil)
	_ cas.Unwrapper = (*Faulty)(nil)
)

// NewFaulty returns a [Faulty] around b with no faults planned.
func NewFaulty(b cas.Backend) *Faulty {
	return &Faulty{b: b, calls: make(map[Op]int), fails: make(map[Op]map[int]error)}
}

// Unwrap returns the wrapped backend.
func (f *Faulty) Unwrap() cas.Backend { return f.b }

// FailNth makes the nth call (counting from 1, over the Faulty's whole
// life) of op return err without reaching the wrapped backend.
func (f *Faulty) FailNth(op Op, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails[op] == nil {
		f.fails[op] = make(map[int]error)
	}
	f.fails[op][n] = err
}

// CorruptGets makes Get flip one byte in the middle of every object whose
// key matches (nil stops corrupting).
func (f *Faulty) CorruptGets(match func(key string) bool) {
	f.mu.Lock()
	f.corrupt = match
	f.mu.Unlock()
}

// Calls returns how many times op was called.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// PutKeys returns the keys of every Put so far, in call order.
func (f *Faulty) PutKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

// Reset zeroes the call counters and forgets the recorded Put keys; planned
// faults stay, counted from the new zero.
func (f *Faulty) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = make(map[Op]int)
	f.puts = nil
}

func (f *Faulty) enter(op Op, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if op == OpPut {
		f.puts = append(f.puts, key)
	}
	if err, ok := f.fails[op][f.calls[op]]; ok {
		return fmt.Errorf("castest: injected fault on %s %s (call %d): %w", op, key, f.calls[op], err)
	}
	return nil
}

// Get counts the call, maybe fails or corrupts, and calls the wrapped Get.
func (f *Faulty) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.enter(OpGet, key); err != nil {
		return nil, err
	}
	b, err := f.b.Get(ctx, key)
	f.mu.Lock()
	c := f.corrupt
	f.mu.Unlock()
	if err == nil && c != nil && c(key) && len(b) > 0 {
		b[len(b)/2] ^= 0x55
	}
	return b, err
}

// Put counts the call, maybe fails, and calls the wrapped Put.
func (f *Faulty) Put(ctx context.Context, key string, data []byte) error {
	if err := f.enter(OpPut, key); err != nil {
		return err
	}
	return f.b.Put(ctx, key, data)
}

// Has counts the call, maybe fails, and calls the wrapped Has.
func (f *Faulty) Has(ctx context.Context, key string) (bool, error) {
	if err := f.enter(OpHas, key); err != nil {
		return false, err
	}
	return f.b.Has(ctx, key)
}

// List counts the call, maybe fails, and calls the wrapped List.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(cas.ObjectInfo) error) error {
	if err := f.enter(OpList, prefix); err != nil {
		return err
	}
	return f.b.List(ctx, prefix, fn)
}

// Delete counts the call, maybe fails, and calls the wrapped Delete.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.enter(OpDelete, key); err != nil {
		return err
	}
	return f.b.Delete(ctx, key)
}

// Sync passes Sync on when the wrapped backend is a [cas.Syncer].
func (f *Faulty) Sync(ctx context.Context) error {
	if s, ok := f.b.(cas.Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}
