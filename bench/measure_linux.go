package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// Usage is what one measured child process cost.
//
// The I/O counters come from /proc/<pid>/io, read while the finished child
// is still a zombie, so they include every descendant it reaped (rsync's
// receiver and generator, for instance). ReadBytes and WriteBytes count
// storage I/O: a read served from the page cache adds nothing to ReadBytes,
// and WriteBytes counts bytes dirtied for write-back when they are written,
// so it measures what the process wrote even before the flush. RChar and
// WChar count bytes passed through read/write-like system calls, cached or
// not.
type Usage struct {
	Wall       time.Duration // from Start to exit
	User, Sys  time.Duration // CPU time of the child and its reaped descendants
	MaxRSS     int64         // peak resident set in bytes of the largest process in the tree (wait4 ru_maxrss)
	ReadBytes  int64         // /proc/<pid>/io read_bytes
	WriteBytes int64         // /proc/<pid>/io write_bytes
	RChar      int64         // /proc/<pid>/io rchar
	WChar      int64         // /proc/<pid>/io wchar
}

// siginfo is large enough for the kernel's siginfo_t (128 bytes).
type siginfo [128]byte

const (
	pPID    = 1          // P_PID
	wNoWait = 0x01000000 // WNOWAIT
)

// waitExited blocks until process pid has exited, leaving it a zombie so
// its /proc entry can still be read.
func waitExited(pid int) error {
	var info siginfo
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|wNoWait, 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return fmt.Errorf("bench: waitid %d: %w", pid, e)
	}
}

// readProcIO parses /proc/<pid>/io.
func readProcIO(pid int, u *Usage) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return fmt.Errorf("bench: read I/O counters of process %d (needs Linux task I/O accounting): %w", pid, err)
	}
	fields := map[string]*int64{
		"rchar": &u.RChar, "wchar": &u.WChar,
		"read_bytes": &u.ReadBytes, "write_bytes": &u.WriteBytes,
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	found := 0
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(": "))
		if !ok {
			continue
		}
		if p := fields[string(k)]; p != nil {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("bench: /proc/%d/io: %s: %w", pid, k, err)
			}
			*p = n
			found++
		}
	}
	if found != len(fields) {
		return fmt.Errorf("bench: /proc/%d/io: found %d of %d counters in %q", pid, found, len(fields), b)
	}
	return nil
}

// Measure starts cmd, waits for it, and returns what it cost. A child that
// exits non-zero gives its Usage and an error wrapping the *exec.ExitError.
// To bound it in time, build cmd with exec.CommandContext.
func Measure(cmd *exec.Cmd) (Usage, error) {
	var u Usage
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return u, fmt.Errorf("bench: start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	werr := waitExited(pid)
	u.Wall = time.Since(start)
	var ioErr error
	if werr == nil {
		ioErr = readProcIO(pid, &u)
	}
	err := cmd.Wait()
	if ps := cmd.ProcessState; ps != nil {
		u.User, u.Sys = ps.UserTime(), ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			u.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
		}
	}
	if err != nil {
		return u, fmt.Errorf("bench: %s: %w", cmd, err)
	}
	return u, errors.Join(werr, ioErr)
}

// JSON returns u in seconds and bytes, for -json reports.
func (u Usage) JSON() UsageJSON {
	return UsageJSON{u.Wall.Seconds(), (u.User + u.Sys).Seconds(), u.MaxRSS, u.ReadBytes, u.WriteBytes, u.RChar, u.WChar}
}
