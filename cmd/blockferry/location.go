package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// location is a parsed SRC or DST argument.
type location struct {
	raw      string  // as given on the command line
	scheme   *scheme // never nil
	path     string  // file or device path, store directory, bucket/prefix, snapshot id
	snapshot string  // after '#', for stores
}

func (l location) String() string { return l.raw }

// sourceOptions are the CLI flags that shape how a source is opened.
type sourceOptions struct {
	blockSize int  // 0: the default
	direct    bool // O_DIRECT for devices
	ebs       *ebsFlags
	stateDir  string // where EBS snapshot manifests are kept ("" for none)
}

// sinkOptions are the CLI flags that shape how a sink is opened.
type sinkOptions struct {
	manifestPath string // where a file sink saves its manifest on commit; "" for none
	direct       bool
	truncate     bool   // a larger target file may be cut to the volume size
	cacheDir     string // a store's digest cache; "" for none
	origin       string // the source's location, for a store snapshot's parent
	ebs          *ebsFlags
	journal      string // the copy's --journal; an EBS sink keeps its state beside it
}

// scheme is one kind of location, with how to open it each way. A nil
// function means the location cannot be used that way.
type scheme struct {
	prefix string // "file:", "s3://"; "" for a bare path
	name   string // for messages
	// hasSnapshot reports whether a '#SNAPSHOT' suffix belongs to the path.
	hasSnapshot bool
	openSource  func(ctx context.Context, l location, o sourceOptions) (blockdiff.Source, func() error, error)
	openSink    func(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error)
	// localFile reports whether the location is a path on this machine, so
	// that the target's manifest can be saved beside it.
	localFile bool
	// fresh reports whether a target here is always new and empty (a store
	// snapshot), so no base manifest can describe it.
	fresh bool
}

// schemes is the literal scheme → adapter table. The first entry whose
// prefix matches wins; a location with no known prefix is a file path.
func schemes() []*scheme {
	return []*scheme{
		{prefix: "file:", name: "file", openSource: openFileSource, openSink: openFileSink, localFile: true},
		{prefix: "dev:", name: "block device", openSource: openDeviceSource, openSink: openDeviceSink, localFile: true},
		{prefix: "cas:", name: "store", hasSnapshot: true, fresh: true, openSource: openStoreSource, openSink: openStoreSink},
		{prefix: "s3://", name: "S3 store", hasSnapshot: true, fresh: true, openSource: openStoreSource, openSink: openStoreSink},
		{prefix: "ebs:", name: "EBS snapshot", openSource: openEBSSource, openSink: openEBSSink},
	}
}

// fileScheme is the scheme of a bare path.
var fileScheme = schemes()[0]

// parseLocation parses a SRC or DST argument.
func parseLocation(s string) (location, error) {
	if s == "" {
		return location{}, usagef("empty location")
	}
	for _, sc := range schemes() {
		if !strings.HasPrefix(s, sc.prefix) {
			continue
		}
		l := location{raw: s, scheme: sc, path: strings.TrimPrefix(s, sc.prefix)}
		if sc.hasSnapshot {
			l.path, l.snapshot, _ = strings.Cut(l.path, "#")
		}
		if l.path == "" {
			return location{}, usagef("location %q names no %s", s, sc.name)
		}
		return l, nil
	}
	if i := strings.Index(s, ":"); i > 0 && isSchemeWord(s[:i]) {
		if _, err := os.Lstat(s); errors.Is(err, os.ErrNotExist) {
			return location{}, usagef("unknown location scheme %q in %q (known: file:, dev:, cas:, s3://, ebs:; a plain path is a file)", s[:i+1], s)
		}
	}
	return location{raw: s, scheme: fileScheme, path: s}, nil
}

func isSchemeWord(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// openSource opens l for reading.
func openSource(ctx context.Context, l location, o sourceOptions) (blockdiff.Source, func() error, error) {
	if l.scheme.openSource == nil {
		return nil, nil, fmt.Errorf("%s: a %s cannot be read from", l, l.scheme.name)
	}
	return l.scheme.openSource(ctx, l, o)
}

// openSink opens or creates l for writing with geometry g.
func openSink(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	if l.scheme.openSink == nil {
		return nil, fmt.Errorf("%s: a %s cannot be written to", l, l.scheme.name)
	}
	return l.scheme.openSink(ctx, l, g, o)
}

func openFileSource(_ context.Context, l location, o sourceOptions) (blockdiff.Source, func() error, error) {
	if err := checkReadable(l.path); err != nil {
		return nil, nil, err
	}
	f, err := source.OpenFile(l.path, source.Options{BlockSize: o.blockSize, Direct: o.direct})
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func openDeviceSource(ctx context.Context, l location, o sourceOptions) (blockdiff.Source, func() error, error) {
	st, err := os.Stat(l.path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", l.path, err)
	}
	if !isBlockDevice(st.Mode()) {
		return nil, nil, fmt.Errorf("%s is not a block device (use file:%s or a plain path for a regular file)", l.path, l.path)
	}
	return openFileSource(ctx, l, o)
}

func openDeviceSink(ctx context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	st, err := os.Stat(l.path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.path, err)
	}
	if !isBlockDevice(st.Mode()) {
		return nil, fmt.Errorf("%s is not a block device (use file:%s or a plain path for a regular file)", l.path, l.path)
	}
	return openFileSink(ctx, l, g, o)
}

func openFileSink(_ context.Context, l location, g blockdiff.Geometry, o sinkOptions) (blockdiff.Sink, error) {
	return sink.OpenFile(l.path, g, sink.Options{ManifestPath: o.manifestPath, Direct: o.direct, Truncate: o.truncate})
}

// checkReadable gives the operator a precise message for the common ways a
// path is not a readable volume, before any adapter sees it.
func checkReadable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s does not exist: check the path: %w", path, blockdiff.ErrNotFound)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a volume: give a disk image file or a block device", path)
	}
	if m := st.Mode(); !m.IsRegular() && !isBlockDevice(m) {
		return fmt.Errorf("%s is a %s, not a volume: give a disk image file or a block device", path, modeName(m))
	}
	return nil
}

// manifestPathFor returns where a copy to l saves the target's manifest:
// DST.bfm beside a file target, or a name derived from the location inside
// stateDir when one is given. It returns "" when there is nowhere to save.
func manifestPathFor(l location, stateDir string) (string, error) {
	if stateDir != "" {
		name := l.raw
		if l.scheme.localFile {
			abs, err := filepath.Abs(l.path)
			if err != nil {
				return "", err
			}
			name = abs
		}
		return filepath.Join(stateDir, safeName(name)+".bfm"), nil
	}
	if l.scheme.localFile {
		if strings.HasPrefix(l.path, "/dev/") {
			return "", nil // never write beside a device node
		}
		return l.path + ".bfm", nil
	}
	return "", nil
}

// safeName turns a location into one file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimLeft(s, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// isManifestFile reports whether path is a regular file whose content starts
// like a blockdiff manifest, or one named *.bfm (so that a damaged manifest
// is reported as such instead of being hashed as a volume).
func isManifestFile(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	if strings.HasSuffix(path, ".bfm") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [blockdiff.ManifestPrefixLen]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && blockdiff.IsManifest(b[:])
}

func isBlockDevice(m os.FileMode) bool {
	return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0
}

// modeName names a file type for messages.
func modeName(m os.FileMode) string {
	switch {
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file (" + m.Type().String() + ")"
}
