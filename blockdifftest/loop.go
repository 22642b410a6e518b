package blockdifftest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// LoopDevice attaches the file backing to a free loop device with
// `losetup -f --show` and returns the device's path; t.Cleanup detaches it.
// A loop device's size is the file's size rounded down to 512 bytes.
//
// Loop devices need Linux, root, /dev/loop-control and the losetup tool.
// When one is missing LoopDevice skips the test, saying why and naming
// instead, the code path that was tested in its place; with the environment
// variable CI=true it fails instead, so a CI machine cannot skip silently.
func LoopDevice(t testing.TB, backing, instead string) string {
	t.Helper()
	return loopDevice(t, backing, instead, false)
}

// ReadOnlyLoopDevice is [LoopDevice] with `losetup -r`: the device refuses
// writes with EROFS, even to root.
func ReadOnlyLoopDevice(t testing.TB, backing, instead string) string {
	t.Helper()
	return loopDevice(t, backing, instead, true)
}

func loopDevice(t testing.TB, backing, instead string, readOnly bool) string {
	t.Helper()
	unavailable := func(why string) {
		t.Helper()
		msg := "loop device unavailable: " + why + "; tested instead: " + instead
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: loop device tests must run; run as root on Linux with losetup)")
		}
		t.Skip(msg)
	}
	if runtime.GOOS != "linux" {
		unavailable("not Linux")
	}
	if os.Geteuid() != 0 {
		unavailable("not running as root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		unavailable(err.Error())
	}
	tool, err := exec.LookPath("losetup")
	if err != nil {
		unavailable(err.Error())
	}
	args := []string{"-f", "--show", backing}
	if readOnly {
		args = append([]string{"-r"}, args...)
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		unavailable("losetup " + strings.Join(args, " ") + ": " + err.Error() + ": " + strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(tool, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}
