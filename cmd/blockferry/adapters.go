package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/s3"
)

// storeBackend returns the backend of the store named by l: a directory
// (cas:DIR, created when create is set) or an S3 bucket and prefix
// (s3://BUCKET/PREFIX). S3 takes the SDK's usual configuration
// (credentials, AWS_REGION, AWS_ENDPOINT_URL_S3 for MinIO and the like).
func storeBackend(ctx context.Context, l location, create bool) (cas.Backend, error) {
	switch l.scheme.prefix {
	case "s3://":
		opts, _, err := s3.ParseURL(l.raw)
		if err != nil {
			return nil, err
		}
		return s3.New(ctx, opts)
	case "cas:":
		if create {
			return cas.NewDir(l.path)
		}
		return cas.OpenDir(l.path)
	}
	return nil, fmt.Errorf("%s is not a store: give cas:DIR or s3://BUCKET/PREFIX", l.raw)
}

// openStore opens the store named by l. cacheDir, when not empty, keeps a
// digest cache there so that a later backup need not ask the backend about
// contents an earlier one stored.
func openStore(ctx context.Context, l location, create bool, cacheDir string) (*cas.Store, error) {
	b, err := storeBackend(ctx, l, create)
	if err != nil {
		return nil, err
	}
	return cas.Open(ctx, b, cas.Options{CacheDir: cacheDir})
}

// openStoreSource opens snapshot l.snapshot of a store for reading (restore).
func openStoreSource(ctx context.Context, l location, _ sourceOptions) (blockdiff.Source, func() error, error) {
	if l.snapshot == "" {
		base := strings.TrimSuffix(l.raw, "#")
		return nil, nil, usagef("%s names no snapshot: use %s#NAME (list them with \"blockferry store ls %s\")", l.raw, base, base)
	}
	st, err := openStore(ctx, l, false, "")
	if err != nil {
		return nil, nil, err
	}
	sn, err := st.OpenSnapshot(ctx, l.snapshot)
	if err != nil {
		return nil, nil, errors.Join(err, st.Close())
	}
	return sn, func() error { return errors.Join(sn.Close(), st.Close()) }, nil
}

// casSink is a store snapshot being written; closing it also closes its
// store. Embedding keeps the sink's optional capabilities (Haser,
// Referencer) visible to the engine.
type casSink struct {
	*cas.SnapshotSink
	store *cas.Store
}

func (c casSink) Close() error { return errors.Join(c.SnapshotSink.Close(), c.store.Close()) }

// openStoreSink starts a new snapshot l.snapshot (default: the current UTC
// time) in a store. The newest snapshot taken from the same origin is its
// parent, so contents it holds are not asked about again.
func openStoreSink(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	name := l.snapshot
	if name == "" {
		name = time.Now().UTC().Format("20060102T150405Z")
	}
	st, err := openStore(ctx, l, true, o.cacheDir)
	if err != nil {
		return nil, err
	}
	opts := cas.SnapshotOptions{}
	if o.origin != "" {
		snaps, err := st.List(ctx)
		if err != nil {
			return nil, errors.Join(err, st.Close())
		}
		var newest time.Time
		for _, s := range snaps {
			if s.Origin == o.origin && s.Geometry == g && !s.Time.Before(newest) {
				opts.Parent, newest = s.Name, s.Time
			}
		}
	}
	k, err := st.NewSnapshotSink(ctx, name, g, opts)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return casSink{SnapshotSink: k, store: st}, nil
}
