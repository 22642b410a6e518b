//go:build !linux

package sink

import (
	"errors"
	"io/fs"
	"os"
)

const oDirect = 0

func isReadOnly(err error) bool { return errors.Is(err, fs.ErrPermission) }

func isInval(error) bool { return false }

func deviceReadOnly(*os.File) (bool, error) { return false, nil }

func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

func zeroDevice(*os.File, int64, int64, bool) error { return errors.ErrUnsupported }

func copyRange(*os.File, int64, int64, int) error { return errors.ErrUnsupported }

func sameDevice(fs.FileInfo, fs.FileInfo) bool { return false }
