package cas

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Backend is flat key → bytes object storage under a [Store]: a local
// directory ([NewDir]), memory ([NewMemory]) or an S3 bucket (package
// cas/s3). Keys are slash-separated relative paths such as
// "chunks/ab/cd/abcd…"; see [ValidKey].
//
// Get returns the whole object; a missing key gives an error wrapping
// [blockdiff.ErrNotFound] with the backend's own error kept in the chain.
// Put stores data under key, replacing any object there, atomically: a
// concurrent or later Get sees the old object or the new one, never a part.
// Put does not keep data. Has reports whether key exists. List calls fn for
// every object whose key starts with prefix, in ascending key order; an
// error from fn stops the walk and is returned. Delete removes key; deleting
// a missing key is not an error.
//
// All methods check ctx and are safe for concurrent use, also by several
// processes sharing the same storage.
type Backend interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, data []byte) error
	Has(ctx context.Context, key string) (bool, error)
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	Delete(ctx context.Context, key string) error
}

// ObjectInfo describes one object found by [Backend.List].
type ObjectInfo struct {
	Key     string
	Size    int64     // bytes
	ModTime time.Time // when the object was last written, by the backend's clock
}

// Syncer is a [Backend] that can make every completed Put durable on
// demand (a directory backend fsyncs the directories it renamed into). The
// [Store] calls Sync before writing a snapshot, so that a crash never leaves
// a durable snapshot pointing at chunks that were lost.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Unwrapper is a [Backend] decorator that can return the backend it wraps.
type Unwrapper interface {
	Unwrap() Backend
}

// ValidKey reports an error unless key is a usable object key: non-empty, at
// most 1024 bytes, slash-separated, with no empty, "." or ".." element, no
// element starting with ".", and no backslash or NUL.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("cas: key %q: must be 1 to 1024 bytes", key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("cas: key %q: must not contain a backslash or NUL", key)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el[0] == '.' {
			return fmt.Errorf("cas: key %q: elements must be non-empty and not start with '.'", key)
		}
	}
	return nil
}

// validPrefix is like ValidKey but allows "" and a trailing slash.
func validPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return nil
	}
	return ValidKey(p)
}
