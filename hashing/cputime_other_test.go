//go:build !linux

package hashing_test

func threadCPU() (float64, bool) { return 0, false }
