package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// loopDevice attaches a loop device over a new file of size bytes and
// returns its path; it is detached when the test ends. Without losetup or
// the right to use it the test skips (fails under CI=true).
func loopDevice(t *testing.T, size int64) string {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("losetup: %v: %s", err, out)
		}
		t.Skipf("no loop device (losetup: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func readDevice(t *testing.T, dev string, n int64) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCopyToBlockDevice(t *testing.T) {
	dir := t.TempDir()
	v1 := newImage(21, 32, 0)
	v2 := v1.clone()
	fresh := newImage(22, 32, 0)
	for _, i := range []int{0, 3, 17, 30} {
		v2.blocks[i] = fresh.blocks[i+1]
	}
	v2.blocks[5] = make([]byte, testBS)
	a := v1.write(t, filepath.Join(dir, "v1.img"))
	b := v2.write(t, filepath.Join(dir, "v2.img"))
	dev := loopDevice(t, v1.size)
	state := filepath.Join(dir, "state")

	mustCLI(t, "copy", a, "dev:"+dev, "--block-size", "64KiB", "--state-dir", state)
	if !bytes.Equal(readDevice(t, dev, v1.size), v1.bytes()) {
		t.Fatalf("after copy v1: device differs from v1")
	}
	var r copyResult
	mustJSON(t, &r, "copy", b, "dev:"+dev, "--state-dir", state, "--verify=all")
	if r.BaseHow != "saved" {
		t.Errorf("incremental copy to a device: base_from %q, want the manifest saved in --state-dir", r.BaseHow)
	}
	if r.Stats.Written+r.Stats.Zeroed > 5 {
		t.Errorf("incremental copy to a device: wrote %d and zeroed %d blocks, want at most the 5 changed", r.Stats.Written, r.Stats.Zeroed)
	}
	if !bytes.Equal(readDevice(t, dev, v2.size), v2.bytes()) {
		t.Fatalf("after copy v2: device differs from v2")
	}
	mb := filepath.Join(dir, "dev.bfm")
	mustCLI(t, "hash", "dev:"+dev, "-o", mb, "--block-size", "64KiB")
	mustCLI(t, "verify", b, mb)
}
