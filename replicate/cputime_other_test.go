//go:build !unix

package replicate

func processCPU() (int64, bool) { return 0, false }
