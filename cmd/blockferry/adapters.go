package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/cas"
)

// errNotBuilt names an adapter this build of the CLI does not have yet.
func errNotBuilt(l location) error {
	return fmt.Errorf("%s: %s locations are not built into this version of blockferry yet: use a file or device path", l.raw, l.scheme.name)
}

// openStore opens the local content-addressed store named by l (cas:DIR),
// creating the directory when create is set. cacheDir, when not empty,
// keeps a digest cache there so that a later backup does not store again
// what an earlier one stored.
func openStore(ctx context.Context, l location, create bool, cacheDir string) (*cas.Store, error) {
	var b *cas.Dir
	var err error
	if create {
		b, err = cas.NewDir(l.path)
	} else {
		b, err = cas.OpenDir(l.path)
	}
	if err != nil {
		return nil, err
	}
	return cas.Open(ctx, b, cas.Options{CacheDir: cacheDir})
}

func openCASSource(ctx context.Context, l location, _ sourceOptions) (blockdiff.Source, func() error, error) {
	if l.snapshot == "" {
		return nil, nil, usagef("%s names no snapshot: use cas:%s#NAME (list them with \"blockferry store ls cas:%s\")", l.raw, l.path, l.path)
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

func openCASSink(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	name := l.snapshot
	if name == "" {
		name = time.Now().UTC().Format("20060102T150405Z")
	}
	st, err := openStore(ctx, l, true, o.cacheDir)
	if err != nil {
		return nil, err
	}
	k, err := st.NewSnapshotSink(ctx, name, g, cas.SnapshotOptions{})
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return casSink{SnapshotSink: k, store: st}, nil
}

func openS3Source(_ context.Context, l location, _ sourceOptions) (blockdiff.Source, func() error, error) {
	return nil, nil, errNotBuilt(l)
}

func openS3Sink(_ context.Context, l location, _ blockdiff.Geometry, _ sinkOptions) (blockdiff.Sink, error) {
	return nil, errNotBuilt(l)
}

func openEBSSource(_ context.Context, l location, _ sourceOptions) (blockdiff.Source, func() error, error) {
	return nil, nil, errNotBuilt(l)
}

func openEBSSink(_ context.Context, l location, _ blockdiff.Geometry, _ sinkOptions) (blockdiff.Sink, error) {
	return nil, errNotBuilt(l)
}
