package hashing_test

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, in
// seconds, and true; see reportCPURate.
func threadCPU() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, true
}
