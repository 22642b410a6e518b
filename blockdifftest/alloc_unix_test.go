//go:build unix

package blockdifftest_test

import (
	"syscall"
	"testing"
)

// allocated returns the bytes of storage behind the file at path.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
