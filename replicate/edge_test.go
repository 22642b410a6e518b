package replicate

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
	"github.com/blockferry/blockferry/source"
)

// TestShortLastBlock: a volume whose size is not a multiple of the block
// size, with the short last block changing, becoming zero, or a hole.
func TestShortLastBlock(t *testing.T) {
	size := 10*testBS + 1000
	old := volume(5, 11, nil)[:size]
	changed := mutate(old, 10)
	zeroed := bytes.Clone(old)
	clear(zeroed[10*testBS:])
	for _, tc := range []struct {
		name  string
		data  []byte
		holes []blockdiff.Extent
	}{
		{"last block changed", changed, nil},
		{"last block zero", zeroed, nil},
		{"last block a hole", zeroed, []blockdiff.Extent{{First: 10, Count: 1}}},
	} {
		for _, plan := range []PlanKind{PlanHashBase, PlanLiveTarget, PlanFull, PlanManifest, PlanLiveManifest} {
			t.Run(tc.name+"/"+string(plan), func(t *testing.T) {
				var src blockdiff.Source
				if tc.holes != nil {
					s, err := source.NewSparseMemory(tc.data, testBS, tc.holes)
					if err != nil {
						t.Fatal(err)
					}
					src = s
				} else {
					src = memSource(t, tc.data)
				}
				mem := prefilled(t, old)
				var dst blockdiff.Sink = mem
				var opts Options
				switch plan {
				case PlanHashBase:
					opts.Base = manifestOf(t, old)
				case PlanFull:
					dst = writeOnly{mem}
				case PlanManifest:
					opts.Base = manifestOf(t, old)
					src = manifestSource{src, manifestOf(t, tc.data)}
				case PlanLiveManifest:
					src = manifestSource{src, manifestOf(t, tc.data)}
				}
				opts.Verify = VerifyAll
				if plan == PlanFull {
					opts.Verify = VerifyNone
				}
				res, err := Run(context.Background(), src, dst, opts)
				if err != nil {
					t.Fatal(err)
				}
				if res.Plan != plan {
					t.Errorf("plan: got %s, want %s", res.Plan, plan)
				}
				if !bytes.Equal(mem.Bytes(), tc.data) {
					t.Errorf("target differs from the source")
				}
				if plan != PlanFull && res.Stats.Written+res.Stats.Zeroed != 1 {
					t.Errorf("written %d + zeroed %d, want 1 block", res.Stats.Written, res.Stats.Zeroed)
				}
				// BytesWritten: the data blocks sent; a full copy sends
				// every data block, the others only the short last one
				// when it changed (zeroing it sends no data bytes).
				var wantBytes int64
				switch {
				case plan == PlanFull:
					g := blockdiff.Geometry{Size: int64(size), BlockSize: testBS}
					for i := range g.Blocks() {
						if b := tc.data[g.Offset(i) : g.Offset(i)+int64(g.BlockLen(i))]; !isZero(b) {
							wantBytes += int64(len(b))
						}
					}
				case res.Stats.Written == 1:
					wantBytes = 1000
				}
				if res.Stats.BytesWritten != wantBytes {
					t.Errorf("bytes written: got %d, want %d", res.Stats.BytesWritten, wantBytes)
				}
				if _, err := Verify(context.Background(), memSource(t, tc.data), res.Manifest, VerifyOptions{}); err != nil {
					t.Errorf("result manifest does not verify against the source: %v", err)
				}
			})
		}
	}
}

// TestEmptyVolume: a zero-byte volume copies and commits.
func TestEmptyVolume(t *testing.T) {
	src := memSource(t, nil)
	dst, err := sink.NewMemory(src.Geometry())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), src, dst, Options{Journal: t.TempDir() + "/j", Verify: VerifyAll})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Len() != 0 || !dst.Committed() {
		t.Errorf("got %d blocks, committed %v; want 0, true", res.Manifest.Len(), dst.Committed())
	}
}
