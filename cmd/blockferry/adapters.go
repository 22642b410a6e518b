package main

import (
	"context"
	"fmt"

	"github.com/blockferry/blockferry/blockdiff"
)

// errNotBuilt names an adapter this build of the CLI does not have yet.
func errNotBuilt(l location) error {
	return fmt.Errorf("%s: %s locations are not built into this version of blockferry yet: use a file or device path", l.raw, l.scheme.name)
}

func openCASSource(_ context.Context, l location, _ sourceOptions) (blockdiff.Source, func() error, error) {
	return nil, nil, errNotBuilt(l)
}

func openCASSink(_ context.Context, l location, _ blockdiff.Geometry, _ sinkOptions) (blockdiff.Sink, error) {
	return nil, errNotBuilt(l)
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
