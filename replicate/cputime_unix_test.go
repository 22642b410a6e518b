//go:build unix

package replicate

import "syscall"

// processCPU returns the CPU time (user + system) the whole process has
// used, in nanoseconds, and true.
func processCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
