package ebsfake_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// TestDataDir writes blocks over HTTP into the on-disk block log, reads them back through
// the SDK and ReadBlock, and checks Close removes the log.
func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, ebsfake.Options{DataDir: dir})
	logs, _ := filepath.Glob(filepath.Join(dir, "ebsfake-*.blocks"))
	if len(logs) != 1 {
		t.Fatalf("block logs in DataDir: got %v, want one", logs)
	}
	blocks := map[int32][]byte{}
	for i := range int32(8) {
		blocks[i*3] = numbered(int(i))
	}
	blocks[30] = make([]byte, ebsfake.BlockSize) // a zero block: listed, not stored
	id := e.bulk("", slices.Sorted(func(yield func(int32) bool) {
		for i := range blocks {
			if !yield(i) {
				return
			}
		}
	}), func(i int32) []byte { return blocks[i] })
	bs := e.listAll(id)
	if len(bs) != len(blocks) {
		t.Fatalf("listed %d blocks, want %d", len(bs), len(blocks))
	}
	for _, b := range bs {
		got, _, err := e.get(id, *b.BlockIndex, *b.BlockToken)
		if err != nil || !bytes.Equal(got, blocks[*b.BlockIndex]) {
			t.Errorf("block %d: err %v, equal %v", *b.BlockIndex, err, bytes.Equal(got, blocks[*b.BlockIndex]))
		}
		rb, written, err := e.srv.ReadBlock(id, *b.BlockIndex)
		if err != nil || !written || !bytes.Equal(rb, blocks[*b.BlockIndex]) {
			t.Errorf("ReadBlock %d: written %v err %v", *b.BlockIndex, written, err)
		}
	}
	if fi, err := os.Stat(logs[0]); err != nil || fi.Size() != 8*ebsfake.BlockSize {
		t.Errorf("log size: got %v (%v), want %d (zero blocks are not stored)", fi.Size(), err, 8*ebsfake.BlockSize)
	}
	if _, written, err := e.srv.ReadBlock(id, 1); err != nil || written {
		t.Errorf("unwritten block: written %v err %v, want false nil", written, err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logs[0]); !os.IsNotExist(err) {
		t.Errorf("after Close: stat log: %v, want not exist", err)
	}
}
