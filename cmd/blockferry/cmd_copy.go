package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/replicate"
	"github.com/blockferry/blockferry/sink"
)

type copyFlags struct {
	outputFlags
	base        string
	journal     string
	verify      verifyFlag
	concurrency int
	maxInFlight byteSize
	bwlimit     byteRate
	stateDir    string
	blockSize   blockSizeFlag
	direct      bool
	truncate    bool
	cacheDir    string
	ebs         ebsFlags
}

// verifyFlag is --verify (re-read what was written) or --verify=all
// (re-hash the whole target).
type verifyFlag replicate.VerifyMode

func (v *verifyFlag) IsBoolFlag() bool { return true }
func (v *verifyFlag) String() string   { return replicate.VerifyMode(*v).String() }
func (v *verifyFlag) Set(s string) error {
	switch s {
	case "true", "written":
		*v = verifyFlag(replicate.VerifyWritten)
	case "all":
		*v = verifyFlag(replicate.VerifyAll)
	case "false", "none":
		*v = verifyFlag(replicate.VerifyNone)
	default:
		return fmt.Errorf("want --verify (written blocks) or --verify=all (whole target), got %q", s)
	}
	return nil
}

func copyCommand() *command {
	return &command{
		name:    "copy",
		args:    "SRC DST",
		summary: "replicate a volume, moving only changed blocks",
		help: `Makes DST hold exactly what SRC holds, writing only blocks whose content
differs. After a successful copy the target's manifest is saved (DST.bfm
beside a file target, or in --state-dir), and the next copy to the same
DST picks it up as its base automatically, so an incremental run reads and
hashes only the source. --base MANIFEST names the base explicitly.

A store location as DST (cas:DIR#NAME, s3://BUCKET/PREFIX#NAME) backs SRC
up as a new snapshot, storing only contents the store lacks; as SRC it
restores one.

An interrupted copy given --journal FILE resumes where it stopped when run
again with the same arguments. --verify re-reads the written blocks from
the target; --verify=all re-hashes the whole target.

EBS: ebs:snap-ID reads a completed snapshot; ebs:new writes a new one
(512KiB blocks; its size is SRC's, rounded up to whole GiB for EBS, and
its id is printed). The new snapshot's manifest is saved in --state-dir
(default: the user cache directory) under its id. With --parent SNAP-ID
the new snapshot is incremental, and the parent's saved manifest is the
base: copying snapshot v2 of one region onto the copy of v1 in another
region lists the changes v1 -> v2 with ListChangedBlocks and moves only
those blocks. --region/--*-endpoint name the source side, --dest-* the
target side; credentials come from the AWS default chain.`,
		flags: func(fs *flag.FlagSet) any {
			f := &copyFlags{}
			f.register(fs)
			fs.StringVar(&f.base, "base", "", "`MANIFEST` of what DST holds now (default: the manifest saved by the last copy to DST)")
			fs.StringVar(&f.journal, "journal", "", "resume journal `FILE`; an interrupted run resumes from it")
			fs.Var(&f.verify, "verify", "re-read written blocks from the target (=all: re-hash the whole target)")
			fs.IntVar(&f.concurrency, "concurrency", 0, "blocks read and written at once (default: number of CPUs)")
			fs.Var(&f.maxInFlight, "max-inflight", "bound on block bytes held in memory, e.g. 64MiB (default 64MiB)")
			fs.Var(&f.bwlimit, "bwlimit", "cap on bytes per second sent to DST, e.g. 10MB/s (default: none)")
			fs.StringVar(&f.stateDir, "state-dir", "", "keep the target's manifest in `DIR` instead of beside DST")
			registerBlockSize(fs, &f.blockSize)
			fs.BoolVar(&f.direct, "direct", false, "use O_DIRECT on files and devices (bypass the page cache)")
			fs.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "store targets: keep a digest cache in `DIR` so later backups skip stored blocks (\"\": none)")
			fs.BoolVar(&f.truncate, "truncate", false, "let a target file larger than SRC be cut to SRC's size (refused by default)")
			f.ebs.register(fs, true)
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runCopy(ctx, e, opts.(*copyFlags), args)
		},
	}
}

// copyResult is copy's JSON output.
type copyResult struct {
	Source   string             `json:"source"`
	Target   string             `json:"target"`
	Plan     replicate.PlanKind `json:"plan"`
	Base     string             `json:"base,omitempty"`
	BaseHow  string             `json:"base_from,omitempty"` // "flag", "saved", "interrupted" or ""
	Manifest string             `json:"manifest,omitempty"`
	ID       string             `json:"id"`
	Geometry geometryJSON       `json:"geometry"`
	Verify   string             `json:"verify"`
	Stats    replicate.Stats    `json:"stats"`
	Store    *storeStats        `json:"store,omitempty"`       // a store target only
	Snapshot string             `json:"snapshot_id,omitempty"` // an ebs:new target only: the new snapshot
	Notes    []string           `json:"notes,omitempty"`
}

func runCopy(ctx context.Context, e env, f *copyFlags, args []string) (err error) {
	if err := wantArgs(args, "SRC", "DST"); err != nil {
		return err
	}
	srcLoc, err := parseLocation(args[0])
	if err != nil {
		return err
	}
	dstLoc, err := parseLocation(args[1])
	if err != nil {
		return err
	}
	if srcLoc.scheme.localFile && dstLoc.scheme.localFile {
		same, err := sink.SameFile(srcLoc.path, dstLoc.path)
		if err != nil {
			return err
		}
		if same {
			return fmt.Errorf("%s and %s are the same file: the target must be another volume", srcLoc.path, dstLoc.path)
		}
	}
	manifestPath, err := manifestPathFor(dstLoc, f.stateDir)
	if err != nil {
		return err
	}
	ebsDir := ebsStateDir(f.stateDir)
	if isEBS(dstLoc) {
		manifestPath = "" // saved under the new snapshot's id, known after it starts
	}
	if f.ebs.parent != "" && !isEBS(dstLoc) {
		return usagef("--parent applies to an ebs:new target only")
	}
	if f.stateDir != "" {
		if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}

	if f.base != "" && dstLoc.scheme.fresh {
		return usagef("--base does not apply to %s: a %s snapshot is always written whole (the store skips contents it already holds)", dstLoc.raw, dstLoc.scheme.name)
	}
	res := copyResult{Source: srcLoc.raw, Target: dstLoc.raw, Manifest: manifestPath}
	base, err := pickBase(f, dstLoc, manifestPath, &res)
	if err != nil {
		return err
	}
	if base == nil && isEBS(dstLoc) && f.ebs.parent != "" {
		base = ebsParentBase(ebsDir, f.ebs.parent, &res)
	}
	bs := int(f.blockSize)
	if base != nil {
		switch got := base.Geometry().BlockSize; {
		case bs == 0:
			bs = got
		case bs != got && res.BaseHow == "flag":
			return fmt.Errorf("--base %s has block size %d but --block-size is %d: use the same block size or another base", f.base, got, bs)
		case bs != got:
			res.Notes = append(res.Notes, fmt.Sprintf("saved manifest %s ignored: its block size %d is not --block-size %d", manifestPath, got, bs))
			base, res.Base, res.BaseHow = nil, "", ""
		}
	}

	src, closeSrc, err := openSource(ctx, srcLoc, sourceOptions{blockSize: bs, direct: f.direct, ebs: &f.ebs, stateDir: ebsDir})
	if err != nil {
		return err
	}
	defer closeAll(&err, closeSrc)
	g := src.Geometry()
	if base != nil && base.Geometry() != g {
		if res.BaseHow == "flag" {
			return fmt.Errorf("--base %s describes %s but %s is %s: give the manifest of this target's current content", f.base, base.Geometry(), srcLoc.raw, g)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("saved manifest %s ignored: it describes %s, the source is %s", manifestPath, base.Geometry(), g))
		base, res.Base, res.BaseHow = nil, "", ""
	}

	dst, err := openSink(ctx, dstLoc, g, sinkOptions{manifestPath: manifestPath, direct: f.direct, truncate: f.truncate, cacheDir: f.cacheDir, origin: srcLoc.raw, ebs: &f.ebs, journal: f.journal})
	if err != nil {
		return err
	}
	defer closeAll(&err, dst.Close)
	targetID := dstLoc.raw
	ebsDst, _ := dst.(*ebs.Sink)
	if ebsDst != nil {
		targetID = ebsDst.ID()
		res.Snapshot = ebsDst.SnapshotID()
		switch {
		case ebsDst.Restarted() && f.journal != "":
			// The journal names the snapshot that can no longer be written.
			if err := os.Remove(f.journal); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove journal of the abandoned snapshot: %w", err)
			}
			res.Notes = append(res.Notes, fmt.Sprintf("the interrupted run's snapshot could no longer be written: started %s afresh", res.Snapshot))
		case ebsDst.Resumed():
			res.Notes = append(res.Notes, fmt.Sprintf("continued pending snapshot %s of the interrupted run", res.Snapshot))
		}
	}

	// While the target changes, its saved manifest no longer describes it:
	// park it as pending, so that an interrupted run leaves no stale base
	// behind, yet a run resumed from its journal finds the same base again.
	pending := manifestPath + ".pending"
	if manifestPath != "" {
		if err := os.Rename(manifestPath, pending); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("set aside saved manifest: %w", err)
		}
	}

	bar := f.progress(e, "copy")
	opts := replicate.Options{
		Base:        base,
		Concurrency: f.concurrency,
		MaxInFlight: int64(f.maxInFlight),
		BWLimit:     int64(f.bwlimit),
		Journal:     f.journal,
		Verify:      replicate.VerifyMode(f.verify),
		SourceID:    srcLoc.raw,
		TargetID:    targetID,
		Progress: func(ev replicate.Event) {
			bar.Phase(ev.Phase)
			bar.Update(ev.DoneBytes, ev.PlannedBytes)
		},
	}
	result, err := replicate.Run(ctx, src, dst, opts)
	bar.Finish()
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled) && f.journal != "":
			return fmt.Errorf("%w: interrupted; run the same command again to resume from journal %s", err, f.journal)
		case errors.Is(err, context.Canceled):
			return fmt.Errorf("%w: interrupted; the next copy to %s compares it live (give --journal FILE to make a copy resumable)", err, dstLoc.raw)
		}
		return err
	}
	if manifestPath != "" {
		if _, isFile := dst.(*sink.File); !isFile {
			if err := blockdiff.WriteManifestFile(manifestPath, result.Manifest); err != nil {
				return err
			}
		}
		if err := os.Remove(pending); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if ebsDst != nil {
		if res.Manifest, err = ebsSaveManifest(ebsDir, res.Snapshot, result.Manifest); err != nil {
			return err
		}
	}
	if k, ok := dst.(casSink); ok {
		st := k.Stats()
		res.Store = &storeStats{Uploaded: st.Uploaded, UploadedBytes: st.StoredBytes, AlreadyStored: st.Deduped(), ZeroBlocks: st.ZeroBlocks}
	}
	res.Plan = result.Plan
	res.Stats = result.Stats
	res.Geometry = geometryOf(g)
	res.Verify = replicate.VerifyMode(f.verify).String()
	if result.Manifest != nil {
		if res.ID, err = manifestID(result.Manifest); err != nil {
			return err
		}
	}
	switch {
	case f.json:
		return printJSON(e.stdout, res)
	case f.quiet:
		return nil
	}
	printCopySummary(e.stdout, res)
	return nil
}

// pickBase returns the base manifest: --base when given, else the manifest
// the last copy saved for this target, when it still describes the target.
func pickBase(f *copyFlags, dst location, manifestPath string, res *copyResult) (*blockdiff.Manifest, error) {
	if f.base != "" {
		m, err := readManifest(f.base)
		if err != nil {
			return nil, fmt.Errorf("--base: %w", err)
		}
		res.Base, res.BaseHow = f.base, "flag"
		return m, nil
	}
	if manifestPath == "" {
		return nil, nil
	}
	pending := manifestPath + ".pending"
	mst, err := os.Stat(manifestPath)
	if err != nil {
		if _, perr := os.Stat(pending); perr != nil {
			return nil, nil // no saved manifest: a first copy
		}
		// The last copy was interrupted. Its base still holds for the
		// blocks its journal does not list as done, so a resumed run may
		// use it; without the journal the target's state is unknown.
		if f.journal == "" {
			res.Notes = append(res.Notes, fmt.Sprintf("the last copy to %s was interrupted; its content is compared live (give that run's --journal to resume instead)", dst.raw))
			return nil, nil
		}
		m, err := blockdiff.ReadManifestFile(pending)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("base of the interrupted copy %s ignored: %v", pending, err))
			return nil, nil
		}
		res.Base, res.BaseHow = pending, "interrupted"
		return m, nil
	}
	if dst.scheme.localFile {
		tst, err := os.Stat(dst.path)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("saved manifest %s ignored: the target does not exist", manifestPath))
			return nil, nil
		}
		if tst.Mode().IsRegular() && tst.ModTime().After(mst.ModTime()) {
			res.Notes = append(res.Notes, fmt.Sprintf("saved manifest %s ignored: the target was modified after it was saved", manifestPath))
			return nil, nil
		}
	}
	m, err := blockdiff.ReadManifestFile(manifestPath)
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("saved manifest %s ignored: %v", manifestPath, err))
		return nil, nil
	}
	res.Base, res.BaseHow = manifestPath, "saved"
	return m, nil
}

func printCopySummary(w io.Writer, r copyResult) {
	st := r.Stats
	bs := int64(r.Geometry.BlockSize)
	blocks := func(n int64) string { return fmt.Sprintf("%d blocks (%s)", n, humanBytes(n*bs)) }
	base := "none (first copy: the target's content was not known)"
	switch r.BaseHow {
	case "flag":
		base = r.Base + " (--base)"
	case "saved":
		base = r.Base + " (saved by the previous copy)"
	case "interrupted":
		base = r.Base + " (base of the interrupted copy, resumed with its journal)"
	case "parent":
		base = r.Base + " (the parent snapshot's saved manifest)"
	}
	fmt.Fprintf(w, "copied %s -> %s: %s\n", r.Source, r.Target, humanBytes(r.Geometry.Size))
	if r.Snapshot != "" {
		fmt.Fprintf(w, "  snapshot      %s\n", r.Snapshot)
	}
	fmt.Fprintf(w, "  plan          %s\n", r.Plan)
	fmt.Fprintf(w, "  base          %s\n", base)
	fmt.Fprintf(w, "  read          %d blocks, %s\n", st.Read, humanBytes(st.BytesRead))
	fmt.Fprintf(w, "  written       %d blocks, %s\n", st.Written, humanBytes(st.BytesWritten))
	fmt.Fprintf(w, "  zeroed        %s\n", blocks(st.Zeroed))
	fmt.Fprintf(w, "  unchanged     %s skipped\n", blocks(st.SkippedUnchanged))
	fmt.Fprintf(w, "  zero          %s skipped\n", blocks(st.SkippedZero))
	fmt.Fprintf(w, "  deduplicated  %s\n", blocks(st.Deduplicated))
	fmt.Fprintf(w, "  copied locally %s\n", blocks(st.CopiedLocal))
	if st.Resumed > 0 {
		fmt.Fprintf(w, "  resumed       %s done by the interrupted run\n", blocks(st.Resumed))
	}
	if r.Verify != "none" {
		fmt.Fprintf(w, "  verified      %d blocks (--verify=%s)\n", st.Verified, r.Verify)
	}
	fmt.Fprintf(w, "  duration      %s (%s)\n", humanDuration(st.Duration), humanRate(r.Geometry.Size, st.Duration))
	if s := r.Store; s != nil {
		fmt.Fprintf(w, "  store         %d new chunks uploaded (%s compressed), %d blocks already in the store\n",
			s.Uploaded, humanBytes(s.UploadedBytes), s.AlreadyStored)
	}
	if r.Manifest != "" {
		fmt.Fprintf(w, "  manifest      %s (id %s)\n", r.Manifest, r.ID)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// storeStats is what a backup to a store sent, in copy's output.
type storeStats struct {
	Uploaded      int64 `json:"uploaded_chunks"`
	UploadedBytes int64 `json:"uploaded_bytes"` // as stored (compressed)
	AlreadyStored int64 `json:"already_stored_blocks"`
	ZeroBlocks    int64 `json:"zero_blocks"`
}

// defaultCacheDir is the user's cache directory for blockferry, or "" when
// the system has none.
func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "blockferry")
}
