package ebs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsebs "github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/blockdifftest"
	"github.com/blockferry/blockferry/ebs"
	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// TestSourceConformance runs blockdifftest's source suite on snapshots
// seeded in the fake; the suite's small volumes are presented with
// SourceOptions.Size and BlockSize (each fits one 512 KiB EBS block or a
// few).
func TestSourceConformance(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	blockdifftest.TestSource(t, func(t *testing.T, content []byte, holes []blockdiff.Extent, blockSize int) blockdiff.Source {
		if len(content) == 0 {
			t.Skip("an EBS snapshot holds at least 1 GiB; the empty volume does not apply")
		}
		id := r.seed(1, "", content, false)
		src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{Size: int64(len(content)), BlockSize: blockSize})
		if err != nil {
			t.Fatalf("OpenSnapshot: %v", err)
		}
		return src
	})
}

// TestSourceEBSBlocks reads a multi-block snapshot at 512 KiB with holes,
// small token windows (several listings) and a written all-zero block.
func TestSourceEBSBlocks(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	const n = 160 // data in the first 120 blocks, then holes
	g := blockdiff.Geometry{Size: n * ebs.BlockSize, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(5, g, 0.3, 0.1)
	clear(vol[120*ebs.BlockSize:])
	id := r.seed(1, "", vol, false)
	full, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := full.Geometry(), (blockdiff.Geometry{Size: ebs.GiB, BlockSize: ebs.BlockSize}); got != want {
		t.Errorf("Geometry: got %v, want %v", got, want)
	}
	src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{Size: g.Size, PageSize: 100, TokenWindows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := src.Geometry(), g; got != want {
		t.Fatalf("Geometry: got %v, want %v", got, want)
	}
	if got := src.ID(); got != "ebs:"+id {
		t.Errorf("ID: got %q, want %q", got, "ebs:"+id)
	}
	before := r.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock]
	got := readAll(t, src)
	if d := firstDiff(got, vol, ebs.BlockSize); d != -1 {
		t.Fatalf("block %d differs", d)
	}
	var data int
	zero := make([]byte, ebs.BlockSize)
	for off := 0; off < len(vol); off += ebs.BlockSize {
		if !bytes.Equal(vol[off:off+ebs.BlockSize], zero) {
			data++
		}
	}
	if gets := r.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock] - before; gets != data {
		t.Errorf("GetSnapshotBlock calls: got %d, want %d (one per listed block, none for holes)", gets, data)
	}
	var covered int64
	err = src.Extents(r.ctx, func(x blockdiff.Extent) error {
		for i := x.First; i < x.End(); i++ {
			if bytes.Equal(vol[i*ebs.BlockSize:(i+1)*ebs.BlockSize], zero) {
				t.Errorf("extent %+v covers unwritten block %d", x, i)
			}
		}
		covered += x.Count
		return nil
	})
	if err != nil || covered != int64(data) {
		t.Errorf("Extents: covered %d blocks, err %v; want %d, nil", covered, err, data)
	}
}

// corrupter flips a byte of every GetSnapshotBlock body for one index.
type corrupter struct {
	ebs.EBSAPI
	index int32
}

func (c corrupter) GetSnapshotBlock(ctx context.Context, in *awsebs.GetSnapshotBlockInput, fns ...func(*awsebs.Options)) (*awsebs.GetSnapshotBlockOutput, error) {
	out, err := c.EBSAPI.GetSnapshotBlock(ctx, in, fns...)
	if err != nil || aws.ToInt32(in.BlockIndex) != c.index {
		return out, err
	}
	b, err := io.ReadAll(out.BlockData)
	out.BlockData.Close()
	if err != nil {
		return nil, err
	}
	b[100] ^= 1
	out.BlockData = io.NopCloser(bytes.NewReader(b))
	return out, nil
}

func TestSourceErrors(t *testing.T) {
	clk := &clock{t: time.Unix(1700000000, 0)}
	r := newRegion(t, "us-east-1", ebsfake.Options{Clock: clk.Now}, fastClient)
	g := blockdiff.Geometry{Size: 4 * ebs.BlockSize, BlockSize: ebs.BlockSize}
	vol := blockdifftest.Volume(9, g, 0, 0)
	id := r.seed(1, "", vol, true)
	buf := make([]byte, ebs.BlockSize)

	t.Run("checksum mismatch", func(t *testing.T) {
		src, err := ebs.OpenSnapshot(r.ctx, corrupter{r.c.EBS, 2}, id, ebs.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.ReadBlock(r.ctx, 2, buf)
		var be *blockdiff.BlockError
		if !errors.Is(err, blockdiff.ErrChecksum) || !errors.As(err, &be) || be.Index != 2 || !bytes.Contains([]byte(err.Error()), []byte(id)) {
			t.Errorf("ReadBlock of a corrupted body: got %v, want ErrChecksum in a BlockError naming %s block 2", err, id)
		}
		if _, err := src.ReadBlock(r.ctx, 1, buf); err != nil {
			t.Errorf("ReadBlock(1): %v", err)
		}
	})
	t.Run("expired tokens renewed", func(t *testing.T) {
		src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.ReadBlock(r.ctx, 0, buf); err != nil {
			t.Fatal(err)
		}
		clk.Advance(8 * 24 * time.Hour) // block tokens live 7 days
		lists := r.srv.Stats().Requests[ebsfake.OpListSnapshotBlocks]
		if _, err := src.ReadBlock(r.ctx, 3, buf); err != nil {
			t.Fatalf("ReadBlock after token expiry: %v", err)
		}
		if !bytes.Equal(buf, vol[3*ebs.BlockSize:]) {
			t.Error("block 3 differs after renewal")
		}
		if got := r.srv.Stats().Requests[ebsfake.OpListSnapshotBlocks] - lists; got != 1 {
			t.Errorf("ListSnapshotBlocks calls to renew: got %d, want 1", got)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, "snap-0123456789abcdef0", ebs.SourceOptions{})
		if !errors.Is(err, blockdiff.ErrNotFound) {
			t.Errorf("OpenSnapshot of an unknown snapshot: got %v, want ErrNotFound", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		for _, o := range []ebs.SourceOptions{{BlockSize: 1 << 20}, {BlockSize: 3000}, {PageSize: 50}, {Size: 2 * ebs.GiB}} {
			if _, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, o); err == nil {
				t.Errorf("OpenSnapshot(%+v): got nil error, want one", o)
			}
		}
	})
	t.Run("out of range and cancelled", func(t *testing.T) {
		src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, id, ebs.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.ReadBlock(r.ctx, src.Geometry().Blocks(), buf); !errors.Is(err, blockdiff.ErrOutOfRange) {
			t.Errorf("ReadBlock past the end: got %v, want ErrOutOfRange", err)
		}
		ctx, cancel := context.WithCancel(r.ctx)
		cancel()
		if _, err := src.ReadBlock(ctx, 0, buf); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadBlock with a cancelled context: got %v, want context.Canceled", err)
		}
	})
}

// TestChangesSince checks ListChangedBlocks extents, blocks dropped by the
// child reading as zeros, and unrelated bases.
func TestChangesSince(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	blk := func(b byte) []byte { return bytes.Repeat([]byte{b}, ebs.BlockSize) }
	parent := r.seed(1, "", bytes.Join([][]byte{blk(1), blk(2), blk(3), blk(4), blk(5)}, nil), false)
	// The child rewrites 1 and 2, writes 7, and writes zeros over 4.
	out, err := r.c.EBS.StartSnapshot(r.ctx, &awsebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(parent)})
	if err != nil {
		t.Fatal(err)
	}
	c2 := aws.ToString(out.SnapshotId)
	for i, b := range map[int32][]byte{1: blk(9), 2: blk(8), 7: blk(7), 4: make([]byte, ebs.BlockSize)} {
		if err := r.srv.WriteBlock(c2, i, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.srv.SetState(c2, ebsfake.StatusCompleted, ""); err != nil {
		t.Fatal(err)
	}
	src, err := ebs.OpenSnapshot(r.ctx, r.c.EBS, c2, ebs.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []blockdiff.Extent
	if err := src.ChangesSince(r.ctx, "ebs:"+parent, func(x blockdiff.Extent) error { got = append(got, x); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []blockdiff.Extent{{First: 1, Count: 2}, {First: 4, Count: 1}, {First: 7, Count: 1}}
	if len(got) != len(want) {
		t.Fatalf("ChangesSince: got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ChangesSince: got %v, want %v", got, want)
		}
	}
	buf := make([]byte, ebs.BlockSize)
	if _, err := src.ReadBlock(r.ctx, 4, buf); err != nil || !bytes.Equal(buf, make([]byte, ebs.BlockSize)) {
		t.Errorf("block 4 zeroed in the child: err %v, zero %v", err, bytes.Equal(buf, make([]byte, ebs.BlockSize)))
	}
	if _, err := src.ReadBlock(r.ctx, 3, buf); err != nil || buf[0] != 4 {
		t.Errorf("inherited block 3: err %v, first byte %d, want 4", err, buf[0])
	}
	other := r.seed(1, "", blk(6), false)
	for _, base := range []string{"ebs:" + other, "file:/x", "ebs:snap-0123456789abcdef0"} {
		err := src.ChangesSince(r.ctx, base, func(blockdiff.Extent) error { return nil })
		if !errors.Is(err, blockdiff.ErrUnrelated) {
			t.Errorf("ChangesSince(%q): got %v, want ErrUnrelated", base, err)
		}
	}
}

// dropper adds a block to every ListChangedBlocks answer that only the
// first snapshot has (FirstBlockToken only), as the service reports a block
// the second snapshot no longer holds.
type dropper struct {
	ebs.EBSAPI
	index int32
}

func (d dropper) ListChangedBlocks(ctx context.Context, in *awsebs.ListChangedBlocksInput, fns ...func(*awsebs.Options)) (*awsebs.ListChangedBlocksOutput, error) {
	out, err := d.EBSAPI.ListChangedBlocks(ctx, in, fns...)
	if err == nil && out.NextToken == nil {
		out.ChangedBlocks = append(out.ChangedBlocks, types.ChangedBlock{BlockIndex: aws.Int32(d.index), FirstBlockToken: aws.String("AAAA")})
	}
	return out, err
}

// TestChangesSinceDropped: a block only the base has is listed as changed
// and reads as zeros, without a GetSnapshotBlock.
func TestChangesSinceDropped(t *testing.T) {
	r := newRegion(t, "us-east-1", ebsfake.Options{}, fastClient)
	blk := bytes.Repeat([]byte{3}, ebs.BlockSize)
	parent := r.seed(1, "", blk, false)
	child := r.seed(1, parent, nil, false)
	src, err := ebs.OpenSnapshot(r.ctx, dropper{r.c.EBS, 9}, child, ebs.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []blockdiff.Extent
	if err := src.ChangesSince(r.ctx, "ebs:"+parent, func(x blockdiff.Extent) error { got = append(got, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (blockdiff.Extent{First: 9, Count: 1}) {
		t.Errorf("ChangesSince: got %v, want [{9 1}]", got)
	}
	gets := r.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock]
	buf := bytes.Repeat([]byte{0xFF}, ebs.BlockSize)
	if _, err := src.ReadBlock(r.ctx, 9, buf); err != nil || !bytes.Equal(buf, make([]byte, ebs.BlockSize)) {
		t.Errorf("dropped block 9: err %v, zeros %v; want nil, true", err, bytes.Equal(buf, make([]byte, ebs.BlockSize)))
	}
	if n := r.srv.Stats().Requests[ebsfake.OpGetSnapshotBlock] - gets; n != 0 {
		t.Errorf("GetSnapshotBlock calls for a dropped block: got %d, want 0", n)
	}
}
