package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreBackupRestoreAndMaintenance(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := v1v2()
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	store := filepath.Join(dir, "store")
	cache := filepath.Join(dir, "cache")

	var r1, r2 copyResult
	mustJSON(t, &r1, "copy", a, "cas:"+store+"#mon", "--block-size", "64KiB", "--cache-dir", cache)
	mustJSON(t, &r2, "copy", b, "cas:"+store+"#tue", "--block-size", "64KiB", "--cache-dir", cache)
	if r1.Store == nil || r2.Store == nil {
		t.Fatalf("backup to a store: no store stats in the JSON (%+v, %+v)", r1.Store, r2.Store)
	}
	// The second backup stores only contents the first did not.
	seen := map[string]bool{}
	for _, d := range blockSHA(v1.bytes(), testBS) {
		seen[d] = true
	}
	newContents := map[string]bool{}
	for i, d := range blockSHA(v2.bytes(), testBS) {
		if !seen[d] && v2.blocks[i] != nil && bytes.ContainsFunc(v2.blocks[i], func(r rune) bool { return r != 0 }) {
			newContents[d] = true
		}
	}
	if r2.Store.Uploaded != int64(len(newContents)) {
		t.Errorf("second backup: uploaded %d chunks, want %d (only new contents)", r2.Store.Uploaded, len(newContents))
	}

	var ls []snapshotJSON
	mustJSON(t, &ls, "store", "ls", "cas:"+store)
	if len(ls) != 2 || ls[0].Name != "mon" || ls[1].Name != "tue" || ls[1].Geometry.Size != v2.size {
		t.Fatalf("store ls: got %+v, want mon and tue of %d bytes", ls, v2.size)
	}

	for _, snap := range []struct {
		name string
		want *image
	}{{"mon", v1}, {"tue", v2}} {
		out := filepath.Join(dir, snap.name+".img")
		mustCLI(t, "copy", "cas:"+store+"#"+snap.name, out, "--verify=all")
		if !bytes.Equal(readFile(t, out), snap.want.bytes()) {
			t.Errorf("restore %s: content differs from the volume backed up", snap.name)
		}
	}

	var vr storeVerifyJSON
	mustJSON(t, &vr, "store", "verify", store, "--read-data")
	if !vr.OK || vr.Snapshots != 2 || vr.Read == 0 {
		t.Errorf("store verify: got %+v, want ok with 2 snapshots and chunks read", vr)
	}
	var gc gcJSON
	mustJSON(t, &gc, "store", "gc", "cas:"+store, "--grace", "-1s")
	if gc.Deleted != 0 {
		t.Errorf("store gc with every chunk referenced: deleted %d, want 0", gc.Deleted)
	}

	// Damage one chunk: verify --read-data names it and fails.
	var chunk string
	filepath.WalkDir(store, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "chunks") && chunk == "" {
			chunk = p
		}
		return nil
	})
	if chunk == "" {
		t.Fatalf("no chunk file found under %s", store)
	}
	if err := os.WriteFile(chunk, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := cli(t, "store", "verify", "cas:"+store, "--read-data")
	oneErrorLine(t, errOut, err, "corrupt")
	if !strings.Contains(out, "corrupt chunk") {
		t.Errorf("store verify of a damaged store does not list the chunk:\n%s", out)
	}
}

func TestStoreBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"no snapshot name", []string{"copy", "cas:" + dir + "#", filepath.Join(dir, "o.img")}, []string{"names no snapshot"}},
		{"unknown snapshot", []string{"copy", "cas:" + dir + "/s#nope", filepath.Join(dir, "o.img")}, []string{"s"}},
		{"store missing", []string{"store", "ls", filepath.Join(dir, "none")}, []string{"none"}},
		{"bad subcommand", []string{"store", "frob", dir}, []string{"frob"}},
		{"not a store", []string{"store", "ls", "file:" + dir}, []string{"not a store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := cli(t, tt.args...)
			oneErrorLine(t, errOut, err, tt.wants...)
		})
	}
}

func TestStoreSnapshotNameTaken(t *testing.T) {
	dir := t.TempDir()
	img := newImage(3, 8, 0).write(t, filepath.Join(dir, "a.img"))
	args := []string{"copy", img, "cas:" + dir + "/st#a", "--cache-dir", ""}
	mustCLI(t, args...)
	_, errOut, err := cli(t, args...)
	oneErrorLine(t, errOut, err, "already exists")
}
