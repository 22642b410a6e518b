package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/blockferry/blockferry/cas"
)

type storeFlags struct {
	outputFlags
	dryRun   bool
	grace    time.Duration
	readData bool
}

func storeCommand() *command {
	return &command{
		name:    "store",
		args:    "ls|gc|verify STORE",
		summary: "list, garbage-collect or verify a content-addressed store",
		help: `Works on a content-addressed store: cas:DIR (a plain DIR works too) or
s3://BUCKET/PREFIX (AWS credentials and region as the SDK finds them;
AWS_ENDPOINT_URL_S3 for MinIO or another S3-compatible server).
  ls      lists the snapshots: name, time, size, data blocks, manifest ID
  gc      deletes chunks no snapshot references (older than --grace)
  verify  checks every snapshot's manifest and that every chunk it needs
          exists; --read-data also reads and re-hashes every chunk

Back a volume up with "blockferry copy SRC cas:DIR#NAME" and restore it
with "blockferry copy cas:DIR#NAME DST" (likewise with s3://).`,
		flags: func(fs *flag.FlagSet) any {
			f := &storeFlags{}
			f.register(fs)
			fs.BoolVar(&f.dryRun, "dry-run", false, "gc: count what would be deleted, delete nothing")
			fs.DurationVar(&f.grace, "grace", 0, "gc: keep unreferenced objects younger than this (default 1h; negative: none)")
			fs.BoolVar(&f.readData, "read-data", false, "verify: read and re-hash every chunk, not only check it exists")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runStore(ctx, e, opts.(*storeFlags), args)
		},
	}
}

// snapshotJSON is one snapshot in "store ls --json".
type snapshotJSON struct {
	Name     string            `json:"name"`
	Time     time.Time         `json:"time"`
	Tags     map[string]string `json:"tags,omitempty"`
	Geometry geometryJSON      `json:"geometry"`
	Manifest string            `json:"manifest_id"`
	Origin   string            `json:"origin,omitempty"`
}

// storeVerifyJSON is "store verify --json".
type storeVerifyJSON struct {
	OK        bool     `json:"ok"`
	Snapshots int      `json:"snapshots"`
	Chunks    int      `json:"chunks"`
	Read      int64    `json:"chunks_read"`
	Missing   []string `json:"missing"`
	Corrupt   []string `json:"corrupt"`
}

// gcJSON is "store gc --json".
type gcJSON struct {
	DryRun       bool  `json:"dry_run"`
	Snapshots    int   `json:"snapshots"`
	Referenced   int   `json:"referenced_chunks"`
	Chunks       int   `json:"chunks"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	Young        int   `json:"kept_young"`
}

func runStore(ctx context.Context, e env, f *storeFlags, args []string) (err error) {
	if err := wantArgs(args, "SUBCOMMAND", "STORE"); err != nil {
		return err
	}
	sub := args[0]
	if sub != "ls" && sub != "gc" && sub != "verify" {
		return usagef("unknown store subcommand %q: want ls, gc or verify", sub)
	}
	l, err := parseLocation(args[1])
	if err != nil {
		return err
	}
	if l.scheme == fileScheme && l.raw == l.path {
		l = location{raw: args[1], scheme: schemes()[2], path: args[1]} // a plain directory
	}
	if l.snapshot != "" {
		return usagef("%s: store %s works on the whole store; leave out #%s", args[1], sub, l.snapshot)
	}
	st, err := openStore(ctx, l, false, "")
	if err != nil {
		return err
	}
	defer closeAll(&err, st.Close)

	switch sub {
	case "ls":
		snaps, err := st.List(ctx)
		if err != nil {
			return err
		}
		out := make([]snapshotJSON, 0, len(snaps))
		for _, s := range snaps {
			out = append(out, snapshotJSON{Name: s.Name, Time: s.Time, Tags: s.Tags, Geometry: geometryOf(s.Geometry), Manifest: s.Manifest.String(), Origin: s.Origin})
		}
		if f.json {
			return printJSON(e.stdout, out)
		}
		if len(out) == 0 {
			fmt.Fprintf(e.stdout, "%s holds no snapshots\n", args[1])
			return nil
		}
		fmt.Fprintf(e.stdout, "%-24s %-20s %10s %8s  %s\n", "NAME", "TIME (UTC)", "SIZE", "BLOCKS", "ORIGIN")
		for _, s := range out {
			fmt.Fprintf(e.stdout, "%-24s %-20s %10s %8d  %s\n", s.Name, s.Time.UTC().Format("2006-01-02 15:04:05"),
				humanBytes(s.Geometry.Size), s.Geometry.Blocks, s.Origin)
		}
		return nil
	case "gc":
		gs, err := st.GC(ctx, cas.GCOptions{Grace: f.grace, DryRun: f.dryRun})
		if err != nil {
			return err
		}
		res := gcJSON{DryRun: f.dryRun, Snapshots: gs.Snapshots, Referenced: gs.Referenced, Chunks: gs.Chunks,
			Deleted: gs.Deleted, DeletedBytes: gs.DeletedBytes, Young: gs.Young}
		if f.json {
			return printJSON(e.stdout, res)
		}
		verb := "deleted"
		if f.dryRun {
			verb = "would delete"
		}
		fmt.Fprintf(e.stdout, "gc %s: %d snapshots reference %d of %d chunks; %s %d objects (%s); kept %d younger than the grace period\n",
			args[1], gs.Snapshots, gs.Referenced, gs.Chunks, verb, gs.Deleted, humanBytes(gs.DeletedBytes), gs.Young)
		return nil
	default: // verify
		rep, verr := st.Verify(ctx, f.readData)
		res := storeVerifyJSON{Snapshots: rep.Snapshots, Chunks: rep.Chunks, Read: rep.Read, Missing: []string{}, Corrupt: []string{}}
		for _, d := range rep.Missing {
			res.Missing = append(res.Missing, d.String())
		}
		for _, d := range rep.Corrupt {
			res.Corrupt = append(res.Corrupt, d.String())
		}
		res.OK = verr == nil && len(res.Missing) == 0 && len(res.Corrupt) == 0
		switch {
		case f.json:
			if err := printJSON(e.stdout, res); err != nil {
				return err
			}
		case f.quiet:
		default:
			fmt.Fprintf(e.stdout, "verify %s: %d snapshots, %d chunks referenced, %d read; %d missing, %d corrupt\n",
				args[1], res.Snapshots, res.Chunks, res.Read, len(res.Missing), len(res.Corrupt))
			for _, d := range res.Missing {
				fmt.Fprintf(e.stdout, "  missing chunk %s\n", d)
			}
			for _, d := range res.Corrupt {
				fmt.Fprintf(e.stdout, "  corrupt chunk %s\n", d)
			}
		}
		if verr != nil {
			return verr
		}
		if !res.OK {
			return fmt.Errorf("%s: %d chunks missing, %d corrupt: restore them from another copy or re-run the backups that need them", args[1], len(res.Missing), len(res.Corrupt))
		}
		return nil
	}
}
