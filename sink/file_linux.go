package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"unsafe"
)

const (
	oDirect = syscall.O_DIRECT

	blkGetSize64 = 0x80081272 // BLKGETSIZE64: _IOR(0x12, 114, size_t)
	blkROGet     = 0x125e     // BLKROGET: _IO(0x12, 94), arg *int
	blkDiscard   = 0x1277     // BLKDISCARD: _IO(0x12, 119), arg uint64[2]{start, len}
	blkZeroOut   = 0x127f     // BLKZEROOUT: _IO(0x12, 127), arg uint64[2]{start, len}

	fallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE
	fallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE
)

func isReadOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

func isInval(err error) bool { return errors.Is(err, syscall.EINVAL) }

// isUnsupported reports whether errno says the operation is not available
// here (rather than that it failed), so a fallback should run.
func isUnsupported(errno syscall.Errno) bool {
	switch errno {
	case syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.ENOTTY, syscall.EINVAL, syscall.EXDEV, syscall.ENODEV:
		return true
	}
	return false
}

// control runs fn on f's descriptor and returns its errno.
func control(f *os.File, fn func(fd uintptr) syscall.Errno) (syscall.Errno, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) { errno = fn(fd) }); err != nil {
		return 0, err
	}
	return errno, nil
}

func ioctl(fd, req uintptr, arg unsafe.Pointer) syscall.Errno {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	return errno
}

// deviceReadOnly reports whether block device f is set read-only (BLKROGET).
// Linux lets even a read-only device be opened for writing, failing each
// write instead, so OpenFile asks. A regular file (ENOTTY) is not.
func deviceReadOnly(f *os.File) (bool, error) {
	var ro int32
	errno, err := control(f, func(fd uintptr) syscall.Errno { return ioctl(fd, blkROGet, unsafe.Pointer(&ro)) })
	if err != nil {
		return false, err
	}
	switch errno {
	case 0:
		return ro != 0, nil
	case syscall.ENOTTY, syscall.EINVAL:
		return false, nil
	}
	return false, os.NewSyscallError("ioctl BLKROGET", errno)
}

// punchHole deallocates [off, off+n) of f, keeping its size. An error
// wrapping errors.ErrUnsupported means the filesystem cannot.
func punchHole(f *os.File, off, n int64) error {
	errno, err := control(f, func(fd uintptr) syscall.Errno {
		var e syscall.Errno
		errors.As(syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, off, n), &e)
		return e
	})
	return wrapErrno("fallocate PUNCH_HOLE", errno, err)
}

// zeroDevice makes [off, off+n) of block device f read as zeros with
// BLKZEROOUT, or discards it with BLKDISCARD. off and n are sector aligned.
func zeroDevice(f *os.File, off, n int64, discard bool) error {
	rng := [2]uint64{uint64(off), uint64(n)}
	req, name := uintptr(blkZeroOut), "ioctl BLKZEROOUT"
	if discard {
		req, name = blkDiscard, "ioctl BLKDISCARD"
	}
	errno, err := control(f, func(fd uintptr) syscall.Errno { return ioctl(fd, req, unsafe.Pointer(&rng)) })
	return wrapErrno(name, errno, err)
}

// copyRange copies n bytes of f from src to dst with copy_file_range. An
// error wrapping errors.ErrUnsupported means the caller should copy itself.
func copyRange(f *os.File, src, dst int64, n int) error {
	if sysCopyFileRange == 0 {
		return errors.ErrUnsupported
	}
	for n > 0 {
		var done uintptr
		errno, err := control(f, func(fd uintptr) syscall.Errno {
			var e syscall.Errno
			done, _, e = syscall.Syscall6(sysCopyFileRange, fd, uintptr(unsafe.Pointer(&src)), fd, uintptr(unsafe.Pointer(&dst)), uintptr(n), 0)
			return e
		})
		if err := wrapErrno("copy_file_range", errno, err); err != nil {
			return err
		}
		if done == 0 {
			return fmt.Errorf("copy_file_range: no progress with %d bytes left: %w", n, errors.ErrUnsupported)
		}
		// The kernel advanced src and dst.
		n -= int(done)
	}
	return nil
}

func wrapErrno(name string, errno syscall.Errno, err error) error {
	switch {
	case err != nil:
		return err
	case errno == 0:
		return nil
	case isUnsupported(errno):
		return fmt.Errorf("%w: %w", errors.ErrUnsupported, os.NewSyscallError(name, errno))
	}
	return os.NewSyscallError(name, errno)
}

// sameDevice reports whether fi1 and fi2 are the same block device node
// numbers, possibly through different paths.
func sameDevice(fi1, fi2 fs.FileInfo) bool {
	if fi1.Mode()&fs.ModeDevice == 0 || fi2.Mode()&fs.ModeDevice == 0 {
		return false
	}
	s1, ok1 := fi1.Sys().(*syscall.Stat_t)
	s2, ok2 := fi2.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && fi1.Mode().Type() == fi2.Mode().Type() && s1.Rdev == s2.Rdev
}
