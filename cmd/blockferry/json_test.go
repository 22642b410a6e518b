package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONFields checks that every command's --json output is one JSON
// object (or array) carrying the fields scripts rely on, and that --quiet
// prints nothing.
func TestJSONFields(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	ma := filepath.Join(dir, "v1.bfm")
	dst := filepath.Join(dir, "t.img")
	store := "cas:" + filepath.Join(dir, "store")

	tests := []struct {
		name string
		args []string
		keys []string // dotted paths that must exist
	}{
		{"hash", []string{"hash", a, "-o", ma, "--block-size", "64KiB"},
			[]string{"source", "manifest", "id", "geometry.size", "geometry.block_size", "geometry.blocks", "counts.data", "counts.zero", "counts.holes", "bytes_read", "seconds"}},
		{"inspect", []string{"inspect", ma},
			[]string{"manifest", "id", "origin", "geometry.blocks", "counts.data", "distinct"}},
		{"diff", []string{"diff", ma, b},
			[]string{"a", "b", "geometry.blocks", "stats.blocks", "stats.unchanged", "stats.changed", "stats.zeroed", "stats.holes", "stats.zeros", "stats.distinct", "stats.bytes"}},
		{"copy", []string{"copy", b, dst, "--block-size", "64KiB", "--verify"},
			[]string{"source", "target", "plan", "id", "manifest", "verify", "geometry.size", "stats.read_blocks", "stats.written_blocks",
				"stats.skipped_unchanged_blocks", "stats.skipped_zero_blocks", "stats.deduplicated_blocks", "stats.copied_local_blocks",
				"stats.verified_blocks", "stats.bytes_read", "stats.bytes_written", "stats.duration_ns"}},
		{"verify", []string{"verify", dst, filepath.Join(dir, "t.img.bfm")},
			[]string{"source", "manifest", "ok", "checked_blocks", "mismatched_blocks", "mismatches", "bytes_read"}},
		{"backup", []string{"copy", a, store + "#one", "--cache-dir", ""},
			[]string{"plan", "store.uploaded_chunks", "store.uploaded_bytes", "store.already_stored_blocks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, _ := cli(t, append(tt.args, "--json")...)
			var obj map[string]any
			if err := json.Unmarshal([]byte(out), &obj); err != nil {
				t.Fatalf("--json output is not one JSON object: %v\nstdout: %s\nstderr: %s", err, out, errOut)
			}
			for _, k := range tt.keys {
				if !hasPath(obj, k) {
					t.Errorf("--json output lacks %q:\n%s", k, out)
				}
			}
		})
	}

	var ls []map[string]any
	out := mustCLI(t, "store", "ls", store, "--json")
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 || ls[0]["name"] != "one" {
		t.Errorf("store ls --json: got %v (%v), want one snapshot named one:\n%s", ls, err, out)
	}

	for _, args := range [][]string{
		{"hash", a, "-o", ma, "--block-size", "64KiB", "--quiet"},
		{"diff", ma, b, "--quiet"},
		{"copy", b, dst, "--quiet"},
	} {
		if out := mustCLI(t, args...); out != "" {
			t.Errorf("%s --quiet: got stdout %q, want nothing", args[0], out)
		}
	}
}

// hasPath reports whether the dotted path names a field in obj.
func hasPath(obj map[string]any, path string) bool {
	var cur any = obj
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
