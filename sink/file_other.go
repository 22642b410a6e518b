//go:build !linux

package sink

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

const oDirect = 0

func isReadOnly(err error) bool { return errors.Is(err, fs.ErrPermission) }

func isInval(error) bool { return false }

// deviceSize returns the size of f by seeking to its end.
func deviceSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	return f.Seek(0, io.SeekEnd)
}

func deviceReadOnly(*os.File) (bool, error) { return false, nil }

func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

func zeroDevice(*os.File, int64, int64, bool) error { return errors.ErrUnsupported }

func copyRange(*os.File, int64, int64, int) error { return errors.ErrUnsupported }

func sameDevice(fs.FileInfo, fs.FileInfo) bool { return false }
