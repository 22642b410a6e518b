package source

import (
	"context"
	"errors"
	"os"
	"syscall"
	"unsafe"
)

const (
	oDirect = syscall.O_DIRECT

	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE

	blkGetSize64 = 0x80081272 // BLKGETSIZE64: _IOR(0x12, 114, size_t)
)

var errInval error = syscall.EINVAL

// DeviceSize returns the size of the block device f by ioctl BLKGETSIZE64.
// A file that is not a device (ENOTTY) is sized by seeking to its end, so
// the device code path also runs on regular files in tests.
func DeviceSize(f *os.File) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size uint64
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, blkGetSize64, uintptr(unsafe.Pointer(&size)))
	}); err != nil {
		return 0, err
	}
	switch errno {
	case 0:
		return int64(size), nil
	case syscall.ENOTTY, syscall.EINVAL:
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		if fi.Mode().IsRegular() {
			return fi.Size(), nil
		}
		return seekEnd(rc)
	}
	return 0, os.NewSyscallError("ioctl BLKGETSIZE64", errno)
}

func seekEnd(rc syscall.RawConn) (int64, error) {
	var off int64
	var serr error
	if err := rc.Control(func(fd uintptr) { off, serr = syscall.Seek(int(fd), 0, 2) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, os.NewSyscallError("lseek SEEK_END", serr)
	}
	return off, nil
}

// dataRanges calls fn for each byte range [start, end) of f below size that
// may hold data, in ascending order, using SEEK_DATA and SEEK_HOLE. If the
// filesystem does not support them, one range covers [0, size).
func dataRanges(ctx context.Context, f *os.File, size int64, fn func(start, end int64) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	seek := func(off int64, whence int) (int64, error) {
		var r int64
		var serr error
		if err := rc.Control(func(fd uintptr) { r, serr = syscall.Seek(int(fd), off, whence) }); err != nil {
			return 0, err
		}
		return r, serr
	}
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		start, err := seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // no data after off
		}
		if errors.Is(err, syscall.EINVAL) && off == 0 {
			return fn(0, size) // SEEK_DATA unsupported
		}
		if err != nil {
			return os.NewSyscallError("lseek SEEK_DATA", err)
		}
		if start >= size {
			return nil
		}
		end, err := seek(start, seekHole)
		if errors.Is(err, syscall.ENXIO) {
			end, err = size, nil // file shrank under us; the rest is past the end
		}
		if err != nil {
			return os.NewSyscallError("lseek SEEK_HOLE", err)
		}
		end = min(end, size)
		if err := fn(start, end); err != nil {
			return err
		}
		off = end
	}
	return nil
}
