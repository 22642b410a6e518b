package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/bench"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		args []string
		size int64
	}{
		{"dense", []string{"-size", "2MiB", "-block", "64KiB"}, 2 << 20},
		{"sparse", []string{"-sparse-size", "1GiB", "-data", "1MiB", "-block", "64KiB"}, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			if err := run(ctx, append(tc.args, "-out", dir, "-json"), &out, &errb); err != nil {
				t.Fatalf("run: %v\n%s", err, errb.String())
			}
			var rep report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out.String())
			}
			info, err := bench.ReadInfo(dir)
			if err != nil {
				t.Fatal(err)
			}
			if info.Counts != rep.Counts || info.Workload.Size != tc.size {
				t.Errorf("workload.json %+v, printed counts %+v, want size %d and equal counts", info, rep.Counts, tc.size)
			}
			for _, name := range []string{bench.V1Name, bench.V2Name} {
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != tc.size {
					t.Errorf("%s: size %d, want %d", name, fi.Size(), tc.size)
				}
			}
		})
	}
	if err := run(ctx, []string{"-size", "1MiB"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("run without -out = nil error, want an error")
	}
	if err := run(ctx, []string{"-size", "1MiB", "-zero", "2", "-out", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("run with -zero 2 = nil error, want an error")
	}
}
