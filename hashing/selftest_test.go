package hashing

import "testing"

func TestSelfTest(t *testing.T) {
	for _, e := range Engines() {
		if !passesSelfTest(e.get()) {
			t.Errorf("engine %v fails the known-answer check", e)
		}
	}
	broken := &impl{batch: func(dst [][Size]byte, blocks [][]byte) {
		stdlibBatch(dst, blocks)
		dst[len(dst)-1][0] ^= 1 // the last lane is wrong
	}}
	if passesSelfTest(broken) {
		t.Error("a batch engine with one wrong lane passes the known-answer check")
	}
	if passesSelfTest(nil) {
		t.Error("an engine this CPU lacks (nil) passes the known-answer check")
	}
}
