package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/replicate"
)

type snapshotFlags struct {
	outputFlags
	ebs         ebsFlags
	excludeBoot bool
	excludeVols stringList
	copyTags    bool
	replicateTo string
	setFile     string
	stateDir    string
	concurrency int
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func snapshotCommand() *command {
	return &command{
		name:    "snapshot",
		args:    "instance INSTANCE-ID | gateway-volume VOLUME-ARN",
		summary: "take a crash-consistent EBS snapshot set, optionally replicate it",
		help: `"snapshot instance ID" snapshots every volume of an EC2 instance at one
moment (EC2 CreateSnapshots) and waits until all are completed;
"snapshot gateway-volume ARN" snapshots a Storage Gateway volume. The set
(volume -> snapshot) is printed, and saved with --set FILE.

--replicate-to ebs:new copies every snapshot of the set into new snapshots
on the target side (--dest-region, --dest-*-endpoint), one volume at a
time. The set file records each volume's copy; the set counts as
replicated only when every volume made it, and running again with the
same --set FILE (a set taken earlier) copies only the volumes still
missing: give "snapshot resume --set FILE --replicate-to ebs:new".`,
		flags: func(fs *flag.FlagSet) any {
			f := &snapshotFlags{}
			f.register(fs)
			f.ebs.register(fs, false)
			fs.StringVar(&f.ebs.description, "description", "", "snapshot description (default \"blockferry\")")
			fs.BoolVar(&f.excludeBoot, "exclude-boot", false, "instance: leave the root volume out")
			fs.Var(&f.excludeVols, "exclude-volume", "instance: leave data volume `VOL-ID` out (repeatable)")
			fs.BoolVar(&f.copyTags, "copy-tags", false, "instance: copy each volume's tags to its snapshot")
			fs.StringVar(&f.replicateTo, "replicate-to", "", "copy the set to `ebs:new` snapshots on the target side (--dest-*)")
			fs.StringVar(&f.setFile, "set", "", "save the set and its replication progress in `FILE` (JSON)")
			fs.StringVar(&f.stateDir, "state-dir", "", "keep the new snapshots' manifests in `DIR` (default: the user cache directory)")
			fs.IntVar(&f.concurrency, "concurrency", 0, "blocks copied at once per volume (default: number of CPUs)")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runSnapshot(ctx, e, opts.(*snapshotFlags), args)
		},
	}
}

// snapshotResult is the snapshot command's JSON output.
type snapshotResult struct {
	Set     *ebs.Set `json:"set"`
	SetFile string   `json:"set_file,omitempty"`
}

func runSnapshot(ctx context.Context, e env, f *snapshotFlags, args []string) error {
	if len(args) == 0 {
		return usagef("missing what to snapshot: instance INSTANCE-ID, gateway-volume VOLUME-ARN or resume")
	}
	if f.replicateTo != "" && f.replicateTo != "ebs:new" {
		return usagef("--replicate-to %q: only ebs:new is supported (give the target region with --dest-region)", f.replicateTo)
	}
	opts := ebs.SetOptions{
		Description:        f.ebs.description,
		Tags:               f.ebs.tags.asMap(),
		ExcludeBootVolume:  f.excludeBoot,
		ExcludeVolumeIDs:   f.excludeVols,
		CopyTagsFromVolume: f.copyTags,
		Wait:               ebs.WaitOptions{Timeout: f.ebs.waitTimeout},
	}
	var set *ebs.Set
	switch kind := args[0]; kind {
	case "instance", "gateway-volume":
		if err := wantArgs(args[1:], strings.ToUpper(map[string]string{"instance": "instance-id", "gateway-volume": "volume-arn"}[kind])); err != nil {
			return err
		}
		c, err := f.ebs.clients(ctx, false)
		if err != nil {
			return err
		}
		if kind == "instance" {
			if !strings.HasPrefix(args[1], "i-") {
				return usagef("%q is not an instance id (i-0123456789abcdef0)", args[1])
			}
			set, err = ebs.SnapshotInstance(ctx, c.EC2, args[1], opts)
		} else {
			if !strings.HasPrefix(args[1], "arn:") || !strings.Contains(args[1], "/volume/") {
				return usagef("%q is not a Storage Gateway volume ARN (arn:aws:storagegateway:REGION:ACCOUNT:gateway/sgw-ID/volume/vol-ID)", args[1])
			}
			set, err = ebs.SnapshotGatewayVolume(ctx, c.Gateway, c.EC2, args[1], opts)
		}
		if err != nil {
			return explainAWS(err)
		}
		if f.setFile != "" {
			if err := set.Save(f.setFile); err != nil {
				return err
			}
		}
	case "resume":
		if err := wantArgs(args[1:]); err != nil {
			return err
		}
		if f.setFile == "" || f.replicateTo == "" {
			return usagef("resume needs --set FILE (from an earlier run) and --replicate-to ebs:new")
		}
		var err error
		if set, err = ebs.LoadSet(f.setFile); err != nil {
			return err
		}
	default:
		return usagef("unknown snapshot kind %q: want instance, gateway-volume or resume", kind)
	}

	var repErr error
	if f.replicateTo != "" {
		repErr = replicateSet(ctx, f, set)
	}
	switch {
	case f.json:
		if err := printJSON(e.stdout, snapshotResult{Set: set, SetFile: f.setFile}); err != nil {
			return err
		}
	case !f.quiet:
		printSet(e.stdout, set, f.setFile, f.replicateTo != "")
	}
	if repErr != nil {
		return fmt.Errorf("set not fully replicated (run \"blockferry snapshot resume --set FILE --replicate-to ebs:new\" with the same target flags to copy the rest): %w", repErr)
	}
	return nil
}

// replicateSet copies every volume of set not yet replicated into a new
// snapshot on the target side.
func replicateSet(ctx context.Context, f *snapshotFlags, set *ebs.Set) error {
	srcC, err := f.ebs.clients(ctx, false)
	if err != nil {
		return err
	}
	dstC, err := f.ebs.clients(ctx, true)
	if err != nil {
		return err
	}
	dir := ebsStateDir(f.stateDir)
	cp := func(ctx context.Context, v ebs.SetVolume) (string, error) {
		src, err := ebs.OpenSnapshot(ctx, srcC.EBS, v.SnapshotID, ebs.SourceOptions{})
		if err != nil {
			return "", explainAWS(err)
		}
		desc := f.ebs.description
		if desc == "" {
			desc = fmt.Sprintf("blockferry copy of %s (%s)", v.SnapshotID, v.VolumeID)
		}
		snk, err := ebs.NewSnapshot(ctx, dstC.EBS, dstC.EC2, ebs.SinkOptions{
			Size: src.Geometry().Size, Tags: f.ebs.tags, Description: desc, WaitTimeout: f.ebs.waitTimeout,
		})
		if err != nil {
			return "", explainAWS(err)
		}
		res, err := replicate.Run(ctx, src, snk, replicate.Options{Concurrency: f.concurrency, SourceID: src.ID(), TargetID: snk.ID()})
		if cerr := snk.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
		if _, err := ebsSaveManifest(dir, snk.SnapshotID(), res.Manifest); err != nil {
			return "", err
		}
		return snk.SnapshotID(), nil
	}
	return ebs.ReplicateSet(ctx, set, cp, ebs.ReplicateOptions{Path: f.setFile})
}

func printSet(w io.Writer, set *ebs.Set, file string, replicated bool) {
	fmt.Fprintf(w, "snapshot set of %s %s: %d volumes, taken %s\n", set.Kind, set.Source, len(set.Volumes), set.Created.Format("2006-01-02 15:04:05Z"))
	for _, v := range set.Volumes {
		line := fmt.Sprintf("  %s -> %s  %d GiB  %s", v.VolumeID, v.SnapshotID, v.SizeGiB, v.State)
		switch {
		case v.Replicated:
			line += "  replicated as " + v.TargetSnapshotID
		case v.Error != "":
			line += "  NOT replicated: " + oneLine(v.Error)
		}
		fmt.Fprintln(w, line)
	}
	if replicated {
		if set.Replicated {
			fmt.Fprintf(w, "  replicated    every volume\n")
		} else {
			fmt.Fprintf(w, "  replicated    no: some volumes failed (the set counts only when all made it)\n")
		}
	}
	if file != "" {
		fmt.Fprintf(w, "  set file      %s\n", file)
	}
}
