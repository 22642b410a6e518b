package cas

import (
	"bytes"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
)

// FuzzChunkDecode feeds arbitrary stored chunks to the decoder: it must
// never panic, and whatever it accepts must hash to the name asked for.
func FuzzChunkDecode(f *testing.F) {
	c, err := newCodec(0)
	if err != nil {
		f.Fatal(err)
	}
	text := bytes.Repeat([]byte("abc"), 2000)
	f.Add(c.encode(nil, text), false)
	f.Add(c.encode(nil, randomBlock(4096)), false)
	f.Add([]byte{1, 0x28, 0xb5, 0x2f, 0xfd}, true)
	f.Fuzz(func(t *testing.T, b []byte, useText bool) {
		d := blockdiff.Digest(hashing.Sum256(b))
		if useText {
			d = hashing.Sum256(text)
		}
		out, err := c.decode(d, b, nil)
		if err == nil && blockdiff.Digest(hashing.Sum256(out)) != d {
			t.Fatalf("decode accepted content that does not hash to %s", d)
		}
	})
}

// FuzzSnapshotInfo feeds arbitrary snapshot objects to the parser.
func FuzzSnapshotInfo(f *testing.F) {
	si := SnapshotInfo{Name: "n", Geometry: blockdiff.Geometry{Size: 10, BlockSize: 4096}, Tags: map[string]string{"a": "b"}}
	f.Add(si.marshal())
	f.Add([]byte(`{"name":"n","block_size":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unmarshalInfo("n", b)
		if err != nil {
			return
		}
		if got.Name != "n" || got.Geometry.Validate() != nil {
			t.Fatalf("accepted %+v", got)
		}
		again, err := unmarshalInfo("n", got.marshal())
		if err != nil || again.Geometry != got.Geometry || again.Manifest != got.Manifest {
			t.Fatalf("re-marshal: got %+v, %v; want %+v", again, err, got)
		}
	})
}
