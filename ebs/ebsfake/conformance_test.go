package ebsfake_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ebs/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

var (
	snapIDRe = regexp.MustCompile(`^snap-[0-9a-f]{17}$`)
	tokenRe  = regexp.MustCompile(`^[A-Za-z0-9+/=]{1,256}$`)
	uuidRe   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// numbered returns a block whose first 8 bytes hold n: distinct, cheap data.
func numbered(n int) []byte {
	b := make([]byte, ebsfake.BlockSize)
	binary.BigEndian.PutUint64(b, uint64(n)+1)
	return b
}

// rawPut writes a block with a hand-made request (no Content-Type, Content-Length).
func (e *env) rawPut(id string, idx int32, data []byte) {
	e.t.Helper()
	resp, body := e.raw("PUT", fmt.Sprintf("/snapshots/%s/blocks/%d", id, idx), map[string]string{
		"x-amz-Data-Length": strconv.Itoa(len(data)), "x-amz-Checksum": sum64(data),
		"x-amz-Checksum-Algorithm": "SHA256"}, bytes.NewReader(data))
	if resp.StatusCode != 201 {
		e.t.Fatalf("raw put %d: got %d %s, want 201", idx, resp.StatusCode, body)
	}
}

// bulk writes n blocks (data from gen) with 4 concurrent raw writers and completes the
// snapshot; it returns the id.
func (e *env) bulk(parent string, idx []int32, gen func(i int32) []byte) string {
	e.t.Helper()
	in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)}
	if parent != "" {
		in.ParentSnapshotId = aws.String(parent)
	}
	id := e.start(in)
	blocks := make(map[int32][]byte, len(idx))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int32)
	for range 4 {
		wg.Go(func() {
			for i := range ch {
				d := gen(i)
				e.rawPut(id, i, d)
				mu.Lock()
				blocks[i] = d
				mu.Unlock()
			}
		})
	}
	for _, i := range idx {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if err := e.complete(id, blocks); err != nil {
		e.t.Fatalf("complete bulk: %v", err)
	}
	e.wantStatus(id, ebsfake.StatusCompleted)
	return id
}

func seq(from, to int32) []int32 {
	var out []int32
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// rawJSON decodes a JSON body keeping numbers as json.Number.
func rawJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func TestConformance(t *testing.T) {
	t.Run("check-01-start-snapshot-wire", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		resp, body := e.raw("POST", "/snapshots", map[string]string{"Content-Type": "application/json"}, strings.NewReader(`{"VolumeSize":1}`))
		if resp.StatusCode != 201 {
			t.Fatalf("status: got %d, want 201; %s", resp.StatusCode, body)
		}
		m := rawJSON(t, body)
		if id, _ := m["SnapshotId"].(string); !snapIDRe.MatchString(id) {
			t.Errorf("SnapshotId: got %q, want snap- and 17 hex digits", id)
		}
		if m["Status"] != "pending" {
			t.Errorf("Status: got %v, want pending", m["Status"])
		}
		if m["BlockSize"] != json.Number("524288") || m["VolumeSize"] != json.Number("1") {
			t.Errorf("BlockSize/VolumeSize: got %v/%v, want 524288/1", m["BlockSize"], m["VolumeSize"])
		}
		if o, _ := m["OwnerId"].(string); !regexp.MustCompile(`^\d{12}$`).MatchString(o) {
			t.Errorf("OwnerId: got %q, want 12 digits", o)
		}
		st, ok := m["StartTime"].(json.Number)
		if !ok {
			t.Fatalf("StartTime: got %T %v, want a JSON number", m["StartTime"], m["StartTime"])
		}
		if f, _ := st.Float64(); f != 1700000000.123 {
			t.Errorf("StartTime: got %v, want 1700000000.123 (the fake clock)", st)
		}
		// The Go SDK parses the same response.
		out, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != types.StatusPending || *out.BlockSize != 524288 || !out.StartTime.Equal(e.clock.Now().Truncate(time.Millisecond)) {
			t.Errorf("SDK: got status %s block size %d start %v", out.Status, *out.BlockSize, out.StartTime)
		}
	})

	t.Run("check-02-start-echoes-fields", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		tags := []types.Tag{{Key: aws.String("team"), Value: aws.String("dr")}, {Key: aws.String("empty"), Value: aws.String("")}}
		out, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Description: aws.String("nightly backup"), Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		if *out.Description != "nightly backup" || len(out.Tags) != 2 || *out.Tags[0].Key != "team" || *out.Tags[0].Value != "dr" || *out.Tags[1].Key != "empty" || *out.Tags[1].Value != "" {
			t.Errorf("got description %v tags %+v, want echoes", out.Description, out.Tags)
		}
		parent := e.snapshotWith("", nil)
		child, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(parent)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(child.ParentSnapshotId); got != parent {
			t.Errorf("ParentSnapshotId: got %q, want %q", got, parent)
		}
		arn := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		enc, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Encrypted: aws.Bool(true), KmsKeyArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(enc.KmsKeyArn); got != arn {
			t.Errorf("KmsKeyArn: got %q, want %q", got, arn)
		}
	})

	t.Run("check-03-client-token-replay", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		in := func() *ebs.StartSnapshotInput {
			return &ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), Description: aws.String("d"), ClientToken: aws.String("token-1")}
		}
		a, b := e.start(in()), e.start(in())
		if a != b {
			t.Errorf("replay: got %s then %s, want the same id", a, b)
		}
		if n := len(e.srv.Snapshots()); n != 1 {
			t.Errorf("snapshots: got %d, want 1", n)
		}
	})

	t.Run("check-04-client-token-conflict", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		e.start(&ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), ClientToken: aws.String("tok")})
		_, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(3), ClientToken: aws.String("tok")})
		wantAPIError(t, err, "ConflictException", "")
		resp, body := e.raw("POST", "/snapshots", nil, strings.NewReader(`{"VolumeSize":2,"Description":"x","ClientToken":"tok"}`))
		wantRawError(t, resp, body, 409, "ConflictException", "")
		if n := len(e.srv.Snapshots()); n != 1 {
			t.Errorf("snapshots: got %d, want 1", n)
		}
	})

	t.Run("check-05-encrypted-with-parent", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		p := e.snapshotWith("", nil)
		_, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(p), Encrypted: aws.Bool(true)})
		wantAPIError(t, err, "ValidationException", "")
	})

	t.Run("check-06-start-bounds", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		for _, tc := range []struct {
			name string
			in   ebs.StartSnapshotInput
		}{
			{"timeout-5", ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Timeout: aws.Int32(5)}},
			{"timeout-5000", ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Timeout: aws.Int32(5000)}},
			{"size-0", ebs.StartSnapshotInput{VolumeSize: aws.Int64(0)}},
			{"size-65537", ebs.StartSnapshotInput{VolumeSize: aws.Int64(65537)}},
			{"description-256", ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Description: aws.String(strings.Repeat("d", 256))}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.client.StartSnapshot(e.ctx, &tc.in)
				wantAPIError(t, err, "ValidationException", "")
			})
		}
		if n := len(e.srv.Snapshots()); n != 0 {
			t.Errorf("snapshots: got %d, want 0", n)
		}
		// The bounds themselves are accepted.
		e.start(&ebs.StartSnapshotInput{VolumeSize: aws.Int64(65536), Timeout: aws.Int32(4320), Description: aws.String(strings.Repeat("d", 255))})
	})

	t.Run("check-07-unknown-parent", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		_, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String("snap-0123456789abcdef0")})
		wantAPIError(t, err, "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND")
	})

	t.Run("check-08-put-block", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		data := fill(0xAB)
		out, err := e.client.PutSnapshotBlock(e.ctx, &ebs.PutSnapshotBlockInput{
			SnapshotId: aws.String(id), BlockIndex: aws.Int32(0), BlockData: bytes.NewReader(data),
			DataLength: aws.Int32(ebsfake.BlockSize), Checksum: aws.String(sum64(data)),
			ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256, Progress: aws.Int32(50)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.Checksum); got != "uthdne/3a6/hwzUxh+9U2QG/D++8j9dxB3n4SJrMpLw=" {
			t.Errorf("Checksum: got %q, want the §5.7 value", got)
		}
		if out.ChecksumAlgorithm != types.ChecksumAlgorithmChecksumAlgorithmSha256 {
			t.Errorf("ChecksumAlgorithm: got %q", out.ChecksumAlgorithm)
		}
		// SDK with a non-seekable reader: chunked transfer encoding.
		d1 := fill(1)
		_, err = e.client.PutSnapshotBlock(e.ctx, &ebs.PutSnapshotBlockInput{
			SnapshotId: aws.String(id), BlockIndex: aws.Int32(1), BlockData: io.MultiReader(bytes.NewReader(d1)),
			DataLength: aws.Int32(ebsfake.BlockSize), Checksum: aws.String(sum64(d1)),
			ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256})
		if err != nil {
			t.Fatalf("chunked SDK put: %v", err)
		}
		hdr := map[string]string{"X-Amz-Data-Length": "524288", "x-amz-checksum-algorithm": "SHA256"}
		for _, tc := range []struct {
			name  string
			idx   int
			ctype string
			body  func(d []byte) io.Reader
		}{
			{"no-content-type-content-length", 2, "", func(d []byte) io.Reader { return bytes.NewReader(d) }},
			{"octet-stream-chunked", 3, "application/octet-stream", func(d []byte) io.Reader { return io.MultiReader(bytes.NewReader(d)) }},
			{"no-content-type-chunked", 4, "", func(d []byte) io.Reader { return io.MultiReader(bytes.NewReader(d)) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := fill(byte(tc.idx))
				h := map[string]string{"x-amz-checksum": sum64(d)}
				for k, v := range hdr {
					h[k] = v
				}
				if tc.ctype != "" {
					h["Content-Type"] = tc.ctype
				}
				resp, body := e.raw("PUT", fmt.Sprintf("/snapshots/%s/blocks/%d", id, tc.idx), h, tc.body(d))
				if resp.StatusCode != 201 {
					t.Fatalf("status: got %d %s, want 201", resp.StatusCode, body)
				}
				if resp.Header.Get("X-Amz-Checksum") != sum64(d) || resp.Header.Get("X-Amz-Checksum-Algorithm") != "SHA256" {
					t.Errorf("checksum headers: got %q %q", resp.Header.Get("X-Amz-Checksum"), resp.Header.Get("X-Amz-Checksum-Algorithm"))
				}
				got, written, err := e.srv.ReadBlock(id, int32(tc.idx))
				if err != nil || !written || !bytes.Equal(got, d) {
					t.Errorf("ReadBlock: written %v err %v, data equal %v", written, err, bytes.Equal(got, d))
				}
			})
		}
		if info, _ := e.srv.Snapshot(id); info.WrittenBlocks != 5 {
			t.Errorf("written blocks: got %d, want 5", info.WrittenBlocks)
		}
	})

	t.Run("check-09-put-bad-checksum", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		_, err := e.client.PutSnapshotBlock(e.ctx, &ebs.PutSnapshotBlockInput{
			SnapshotId: aws.String(id), BlockIndex: aws.Int32(3), BlockData: bytes.NewReader(fill(1)),
			DataLength: aws.Int32(ebsfake.BlockSize), Checksum: aws.String(sum64(fill(2))),
			ChecksumAlgorithm: types.ChecksumAlgorithmChecksumAlgorithmSha256})
		wantAPIError(t, err, "ValidationException", "")
		if err := e.complete(id, nil); err != nil {
			t.Fatal(err)
		}
		e.wantStatus(id, ebsfake.StatusCompleted)
		if got := e.listAll(id); len(got) != 0 {
			t.Errorf("list: got %v, want nothing", indexes(got))
		}
	})

	t.Run("check-10-put-data-length", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		small := bytes.Repeat([]byte{1}, 1024)
		for _, tc := range []struct {
			name   string
			length string
			body   []byte
		}{
			{"data-length-1024", "1024", small},
			{"body-shorter", "524288", small},
			{"body-longer", "524288", append(fill(1), 1)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.raw("PUT", "/snapshots/"+id+"/blocks/0", map[string]string{
					"x-amz-Data-Length": tc.length, "x-amz-Checksum": sum64(tc.body), "x-amz-Checksum-Algorithm": "SHA256"}, bytes.NewReader(tc.body))
				wantRawError(t, resp, body, 400, "ValidationException", "INVALID_PARAMETER_VALUE")
			})
		}
		if info, _ := e.srv.Snapshot(id); info.WrittenBlocks != 0 {
			t.Errorf("written blocks: got %d, want 0", info.WrittenBlocks)
		}
	})

	t.Run("check-11-put-index-out-of-range", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil) // 1 GiB: indexes 0..2047
		wantAPIError(t, e.put(id, 2048, fill(1)), "ValidationException", "INVALID_BLOCK")
		e.mustPut(id, 2047, fill(1))
	})

	t.Run("check-12-put-unknown-snapshot", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		wantAPIError(t, e.put("snap-0123456789abcdef0", 0, fill(1)), "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND")
	})

	t.Run("check-13-overwrite", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		e.mustPut(id, 3, fill(1))
		e.mustPut(id, 3, fill(2))
		if err := e.complete(id, map[int32][]byte{3: fill(2)}); err != nil {
			t.Fatal(err)
		}
		e.wantStatus(id, ebsfake.StatusCompleted)
		bs := e.listAll(id)
		if !slices.Equal(indexes(bs), []int32{3}) {
			t.Fatalf("list: got %v, want [3]", indexes(bs))
		}
		got, _, err := e.get(id, 3, *bs[0].BlockToken)
		if err != nil || !bytes.Equal(got, fill(2)) {
			t.Errorf("get: err %v, second data %v", err, bytes.Equal(got, fill(2)))
		}
	})

	t.Run("check-14-complete", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{CompletionDelay: time.Minute})
		id := e.start(nil)
		blocks := map[int32][]byte{0: fill(1), 9: fill(9)}
		for i, d := range blocks {
			e.mustPut(id, i, d)
		}
		resp, body := e.raw("POST", "/snapshots/completion/"+id, map[string]string{
			"x-amz-ChangedBlocksCount": "2", "x-amz-Checksum": linear(blocks),
			"x-amz-Checksum-Algorithm": "SHA256", "x-amz-Checksum-Aggregation-Method": "LINEAR"}, nil)
		if resp.StatusCode != 202 || string(body) != `{"Status":"pending"}` {
			t.Fatalf("got %d %s, want 202 {\"Status\":\"pending\"}", resp.StatusCode, body)
		}
		e.wantStatus(id, ebsfake.StatusPending)
		e.clock.Advance(time.Minute)
		e.wantStatus(id, ebsfake.StatusCompleted)
		// The SDK sees the same 202 pending.
		id2 := e.start(nil)
		out, err := e.client.CompleteSnapshot(e.ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(id2), ChangedBlocksCount: aws.Int32(0)})
		if err != nil || out.Status != types.StatusPending {
			t.Fatalf("SDK complete: got %v %v, want pending", out, err)
		}
	})

	t.Run("check-15-linear-worked-example", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		blocks := map[int32][]byte{5: fill(2), 0: fill(1), 2: fill(0xAB)}
		if got := linear(blocks); got != "dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ=" {
			t.Fatalf("test helper linear: got %s", got)
		}
		for _, tc := range []struct {
			sum  string
			want ebsfake.Status
		}{
			{"dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ=", ebsfake.StatusCompleted},
			{"qgS6YeYDmOaWPwMv0etJfOtjJt+T6BYqXBVCpOHi6Ho=", ebsfake.StatusError},
		} {
			id := e.start(nil)
			for _, i := range []int32{5, 0, 2} {
				e.mustPut(id, i, blocks[i])
			}
			_, err := e.client.CompleteSnapshot(e.ctx, &ebs.CompleteSnapshotInput{
				SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(3), Checksum: aws.String(tc.sum),
				ChecksumAlgorithm:         types.ChecksumAlgorithmChecksumAlgorithmSha256,
				ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear})
			if err != nil {
				t.Fatal(err)
			}
			e.wantStatus(id, tc.want)
		}
	})

	t.Run("check-16-complete-mismatch", func(t *testing.T) {
		for _, strict := range []bool{false, true} {
			t.Run(fmt.Sprintf("strict-%v", strict), func(t *testing.T) {
				e := newEnv(t, ebsfake.Options{StrictComplete: strict})
				blocks := map[int32][]byte{1: fill(1), 2: fill(2)}
				for _, tc := range []struct {
					name  string
					count int32
					sum   string
				}{
					{"count", 3, linear(blocks)},
					{"checksum", 2, linear(map[int32][]byte{1: fill(1), 2: fill(3)})},
				} {
					id := e.start(nil)
					for i, d := range blocks {
						e.mustPut(id, i, d)
					}
					_, err := e.client.CompleteSnapshot(e.ctx, &ebs.CompleteSnapshotInput{
						SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(tc.count), Checksum: aws.String(tc.sum),
						ChecksumAlgorithm:         types.ChecksumAlgorithmChecksumAlgorithmSha256,
						ChecksumAggregationMethod: types.ChecksumAggregationMethodChecksumAggregationLinear})
					if strict {
						wantAPIError(t, err, "ValidationException", "INVALID_PARAMETER_VALUE")
						e.wantStatus(id, ebsfake.StatusPending)
						e.clock.Advance(time.Hour + time.Minute)
						e.wantStatus(id, ebsfake.StatusError) // timed out, never completed
					} else {
						if err != nil {
							t.Fatalf("%s: %v", tc.name, err)
						}
						e.wantStatus(id, ebsfake.StatusError)
					}
				}
			})
		}
	})

	t.Run("check-17-put-after-complete", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		wantAPIError(t, e.put(id, 0, fill(2)), "ValidationException", "")
		if got, _, _ := e.srv.ReadBlock(id, 0); !bytes.Equal(got, fill(1)) {
			t.Error("data changed after a refused put")
		}
	})

	t.Run("check-18-timeout", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(&ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Timeout: aws.Int32(10)})
		e.clock.Advance(9 * time.Minute)
		e.mustPut(id, 0, fill(1)) // resets the idle timer
		e.clock.Advance(9 * time.Minute)
		e.wantStatus(id, ebsfake.StatusPending)
		e.clock.Advance(2 * time.Minute)
		e.wantStatus(id, ebsfake.StatusError)
		wantAPIError(t, e.put(id, 1, fill(1)), "ValidationException", "WRITE_REQUEST_TIMEOUT")
		if err := e.complete(id, map[int32][]byte{0: fill(1)}); httpStatus(err) != 400 {
			t.Errorf("complete after timeout: got %v, want 400", err)
		}
	})

	t.Run("check-19-read-pending", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		done := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		tok := tokenFor(e.listAll(done), 0)
		id := e.start(&ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(done)})
		e.mustPut(id, 0, fill(2))
		_, err1 := e.client.ListSnapshotBlocks(e.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(id)})
		_, err2 := e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(done), SecondSnapshotId: aws.String(id)})
		_, _, err3 := e.get(id, 0, tok)
		for i, err := range []error{err1, err2, err3} {
			if st := httpStatus(err); st < 400 || st > 499 {
				t.Errorf("call %d on a pending snapshot: got status %d (%v), want 4xx", i+1, st, err)
			}
		}
	})

	t.Run("check-20-list-snapshot-blocks", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.snapshotWith("", map[int32][]byte{9: fill(9), 1: fill(1), 5: fill(5), 0: fill(0)})
		out, err := e.client.ListSnapshotBlocks(e.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if got := indexes(out.Blocks); !slices.Equal(got, []int32{0, 1, 5, 9}) {
			t.Errorf("indexes: got %v, want [0 1 5 9]", got)
		}
		for _, b := range out.Blocks {
			if !tokenRe.MatchString(*b.BlockToken) {
				t.Errorf("token %q: not 1 to 256 Base64 characters", *b.BlockToken)
			}
		}
		if *out.BlockSize != 524288 || *out.VolumeSize != 1 || out.NextToken != nil {
			t.Errorf("got BlockSize %d VolumeSize %d NextToken %v", *out.BlockSize, *out.VolumeSize, out.NextToken)
		}
		if want := e.clock.Now().Add(7 * 24 * time.Hour); out.ExpiryTime.Sub(want).Abs() > time.Second {
			t.Errorf("ExpiryTime: got %v, want about %v", out.ExpiryTime, want)
		}
		_, body := e.raw("GET", "/snapshots/"+id+"/blocks", nil, nil)
		if _, ok := rawJSON(t, body)["ExpiryTime"].(json.Number); !ok {
			t.Errorf("ExpiryTime is not a JSON number: %s", body)
		}
	})

	// Checks 21 to 24 share a completed snapshot with 250 written blocks.
	big := newEnv(t, ebsfake.Options{DataDir: t.TempDir()})
	bigID := big.start(nil)
	for i := range int32(250) {
		if err := big.srv.WriteBlock(bigID, i, numbered(int(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := big.srv.SetState(bigID, ebsfake.StatusCompleted, ""); err != nil {
		t.Fatal(err)
	}
	rawPage := func(t *testing.T, q string) (idx []int32, next string, hasNext bool, resp *http.Response, body []byte) {
		resp, body = big.raw("GET", "/snapshots/"+bigID+"/blocks?"+q, nil, nil)
		if resp.StatusCode != 200 {
			return nil, "", false, resp, body
		}
		var page struct {
			Blocks []struct{ BlockIndex int32 }
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Blocks {
			idx = append(idx, b.BlockIndex)
		}
		m := rawJSON(t, body)
		n, hasNext := m["NextToken"]
		next, _ = n.(string)
		return idx, next, hasNext, resp, body
	}

	t.Run("check-21-paging", func(t *testing.T) {
		var all []int32
		var sizes []int
		q := "maxResults=100"
		for {
			idx, next, has, resp, body := rawPage(t, q)
			if resp.StatusCode != 200 {
				t.Fatalf("page: %d %s", resp.StatusCode, body)
			}
			sizes = append(sizes, len(idx))
			all = append(all, idx...)
			if !has {
				break
			}
			q = "maxResults=100&pageToken=" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(next)
		}
		if !slices.Equal(sizes, []int{100, 100, 50}) {
			t.Errorf("page sizes: got %v, want [100 100 50]", sizes)
		}
		if full := indexes(big.listAll(bigID)); !slices.Equal(all, full) || !slices.Equal(full, seq(0, 250)) {
			t.Errorf("concatenated pages differ from the full list (%d vs %d entries)", len(all), len(full))
		}
	})

	t.Run("check-22-starting-block-index", func(t *testing.T) {
		out, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), StartingBlockIndex: aws.Int32(200)})
		if err != nil {
			t.Fatal(err)
		}
		if got := indexes(out.Blocks); !slices.Equal(got, seq(200, 250)) {
			t.Errorf("startingBlockIndex=200: got %d entries from %v, want 200..249", len(got), got[:1])
		}
		p1, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), MaxResults: aws.Int32(100)})
		if err != nil || p1.NextToken == nil {
			t.Fatalf("page 1: %v", err)
		}
		p2, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), MaxResults: aws.Int32(100), NextToken: p1.NextToken, StartingBlockIndex: aws.Int32(200)})
		if err != nil {
			t.Fatal(err)
		}
		if got := indexes(p2.Blocks); !slices.Equal(got, seq(100, 200)) {
			t.Errorf("pageToken with startingBlockIndex=200: got %v..., want 100..199", got[:1])
		}
	})

	t.Run("check-23-max-results-bounds", func(t *testing.T) {
		out, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), MaxResults: aws.Int32(50)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Blocks) < 100 {
			t.Errorf("maxResults=50: got %d blocks, want at least 100", len(out.Blocks))
		}
		idx, _, _, _, _ := rawPage(t, "maxResults=50&startingBlockIndex=180")
		if len(idx) != 70 {
			t.Errorf("maxResults=50 with 70 remaining: got %d, want 70", len(idx))
		}
		_, _, _, resp, body := rawPage(t, "maxResults=20000")
		wantRawError(t, resp, body, 400, "ValidationException", "INVALID_PARAMETER_VALUE")
		_, err = big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), MaxResults: aws.Int32(20000)})
		wantAPIError(t, err, "ValidationException", "INVALID_PARAMETER_VALUE")
	})

	t.Run("check-24-bad-page-token", func(t *testing.T) {
		p1, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), MaxResults: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		tok := *p1.NextToken
		raw, _ := base64.StdEncoding.DecodeString(tok)
		raw[3] ^= 1 // move the cursor
		tampered := base64.StdEncoding.EncodeToString(raw)
		for _, tc := range []struct{ name, tok string }{
			{"tampered", tampered},
			{"garbage", "AAAA"},
			{"not-base64", "%%%"},
		} {
			_, err := big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), NextToken: aws.String(tc.tok)})
			wantAPIError(t, err, "ValidationException", "INVALID_PAGE_TOKEN")
		}
		big.clock.Advance(61 * time.Minute)
		_, err = big.client.ListSnapshotBlocks(big.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(bigID), NextToken: aws.String(tok)})
		wantAPIError(t, err, "ValidationException", "INVALID_PAGE_TOKEN")
	})

	t.Run("check-25-lineage-list-and-get", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		p := e.snapshotWith("", map[int32][]byte{0: fill(1), 7: fill(2)})
		c := e.snapshotWith(p, map[int32][]byte{7: fill(3)})
		bs := e.listAll(c)
		if got := indexes(bs); !slices.Equal(got, []int32{0, 7}) {
			t.Fatalf("child list: got %v, want [0 7]", got)
		}
		for _, tc := range []struct {
			idx  int32
			want []byte
		}{{0, fill(1)}, {7, fill(3)}} {
			got, _, err := e.get(c, tc.idx, tokenFor(bs, tc.idx))
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("get(child, %d): err %v, right data %v", tc.idx, err, bytes.Equal(got, tc.want))
			}
		}
	})

	t.Run("check-26-changed-blocks-tokens", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		p := e.snapshotWith("", map[int32][]byte{0: fill(1), 7: fill(2)})
		c := e.snapshotWith(p, map[int32][]byte{7: fill(3)})
		out, err := e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(p), SecondSnapshotId: aws.String(c)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ChangedBlocks) != 1 || *out.ChangedBlocks[0].BlockIndex != 7 || out.ChangedBlocks[0].FirstBlockToken == nil || out.ChangedBlocks[0].SecondBlockToken == nil {
			t.Fatalf("got %+v, want exactly index 7 with both tokens", out.ChangedBlocks)
		}
		cb := out.ChangedBlocks[0]
		if got, _, err := e.get(p, 7, *cb.FirstBlockToken); err != nil || !bytes.Equal(got, fill(2)) {
			t.Errorf("first token on parent: err %v", err)
		}
		if got, _, err := e.get(c, 7, *cb.SecondBlockToken); err != nil || !bytes.Equal(got, fill(3)) {
			t.Errorf("second token on child: err %v", err)
		}
		c2 := e.snapshotWith(p, map[int32][]byte{9: fill(9)})
		out, err = e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(p), SecondSnapshotId: aws.String(c2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ChangedBlocks) != 1 || *out.ChangedBlocks[0].BlockIndex != 9 || out.ChangedBlocks[0].FirstBlockToken != nil || out.ChangedBlocks[0].SecondBlockToken == nil {
			t.Fatalf("child-only index: got %+v, want index 9 with only SecondBlockToken", out.ChangedBlocks)
		}
		if got, _, err := e.get(c2, 9, *out.ChangedBlocks[0].SecondBlockToken); err != nil || !bytes.Equal(got, fill(9)) {
			t.Errorf("second token on child 2: err %v", err)
		}
		// Reversed order: tokens stay relative to the named snapshots.
		out, err = e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(c2), SecondSnapshotId: aws.String(p)})
		if err != nil || len(out.ChangedBlocks) != 1 || out.ChangedBlocks[0].FirstBlockToken == nil || out.ChangedBlocks[0].SecondBlockToken != nil {
			t.Fatalf("reversed: got %+v %v, want index 9 with only FirstBlockToken", out.ChangedBlocks, err)
		}
	})

	t.Run("check-27-changed-blocks-empty-pages", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		// Snapshot 1 has blocks 0..999, seeded without HTTP (1000 puts over the wire are
		// too slow under -race); snapshot 2 changes only 999 through the SDK.
		s1 := e.start(nil)
		zero := make([]byte, ebsfake.BlockSize)
		for i := range int32(1000) {
			if err := e.srv.WriteBlock(s1, i, zero); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.srv.SetState(s1, ebsfake.StatusCompleted, ""); err != nil {
			t.Fatal(err)
		}
		s2 := e.snapshotWith(s1, map[int32][]byte{999: fill(9)})
		var pages, empty int
		var got []int32
		var tok *string
		for {
			out, err := e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(s1), SecondSnapshotId: aws.String(s2), MaxResults: aws.Int32(100), StartingBlockIndex: aws.Int32(0), NextToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(out.ChangedBlocks) == 0 {
				empty++
			}
			for _, c := range out.ChangedBlocks {
				got = append(got, *c.BlockIndex)
			}
			if out.NextToken == nil {
				break
			}
			tok = out.NextToken
		}
		if pages != 10 || empty != 9 || !slices.Equal(got, []int32{999}) {
			t.Errorf("got %d pages, %d empty, changed %v; want 10, 9, [999]", pages, empty, got)
		}
		// The SDK paginator also reaches the end.
		var n int
		p := ebs.NewListChangedBlocksPaginator(e.client, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(s1), SecondSnapshotId: aws.String(s2), MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			out, err := p.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.ChangedBlocks)
		}
		if n != 1 {
			t.Errorf("paginator: got %d changed blocks, want 1", n)
		}
	})

	t.Run("check-28-unrelated-snapshots", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		a := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		b := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		_, err := e.client.ListChangedBlocks(e.ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(a), SecondSnapshotId: aws.String(b)})
		wantAPIError(t, err, "ValidationException", "UNRELATED_SNAPSHOTS")
	})

	t.Run("check-29-get-block-wire", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.snapshotWith("", map[int32][]byte{4: fill(0xAB)})
		tok := tokenFor(e.listAll(id), 4)
		q := "?blockToken=" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(tok)
		resp, body := e.raw("GET", "/snapshots/"+id+"/blocks/4"+q, nil, nil)
		if resp.StatusCode != 200 || len(body) != 524288 || !bytes.Equal(body, fill(0xAB)) {
			t.Fatalf("got %d with %d bytes, want 200 with the block", resp.StatusCode, len(body))
		}
		for k, want := range map[string]string{
			"Content-Type": "application/octet-stream", "Content-Length": "524288", "x-amz-Data-Length": "524288",
			"x-amz-Checksum": sum64(body), "x-amz-Checksum-Algorithm": "SHA256",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		data, out, err := e.get(id, 4, tok)
		if err != nil || *out.DataLength != 524288 || aws.ToString(out.Checksum) != sum64(data) || out.ChecksumAlgorithm != types.ChecksumAlgorithmChecksumAlgorithmSha256 {
			t.Errorf("SDK get: err %v, output %+v", err, out)
		}
	})

	t.Run("check-30-bad-block-token", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		a := e.snapshotWith("", map[int32][]byte{0: fill(1), 1: fill(2)})
		b := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		ta, tb := e.listAll(a), e.listAll(b)
		raw, _ := base64.StdEncoding.DecodeString(tokenFor(ta, 0))
		raw[len(raw)-1] ^= 1
		for _, tc := range []struct {
			name, snap, tok string
			idx             int32
		}{
			{"other-index", a, tokenFor(ta, 0), 1},
			{"other-snapshot", a, tokenFor(tb, 0), 0},
			{"tampered", a, base64.StdEncoding.EncodeToString(raw), 0},
			{"page-token-shape", a, "QUJDRA==", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := e.get(tc.snap, tc.idx, tc.tok)
				wantAPIError(t, err, "ValidationException", "INVALID_BLOCK_TOKEN")
			})
		}
		if _, _, err := e.get(a, 0, tokenFor(ta, 0)); err != nil {
			t.Fatalf("valid token: %v", err)
		}
		e.clock.Advance(7*24*time.Hour + time.Second)
		_, _, err := e.get(a, 0, tokenFor(ta, 0))
		wantAPIError(t, err, "ValidationException", "INVALID_BLOCK_TOKEN")
	})

	t.Run("check-31-error-shape", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{MaxPendingSnapshots: 1, Throttle: ebsfake.Throttle{GetPerSnapshot: 1}})
		done := e.snapshotWith("", map[int32][]byte{0: fill(1)})
		tok := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(tokenFor(e.listAll(done), 0))
		pending := e.start(&ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ClientToken: aws.String("c1")})
		e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpCompleteSnapshot, Nth: 1, Fault: ebsfake.FaultInternal})
		for _, tc := range []struct {
			name, method, path, body string
			hdr                      map[string]string
			status                   int
			typ, reason              string
		}{
			{"validation", "PUT", "/snapshots/" + pending + "/blocks/0", "x", map[string]string{"x-amz-Data-Length": "1"}, 400, "ValidationException", "INVALID_PARAMETER_VALUE"},
			{"bad-id", "GET", "/snapshots/vol-123/blocks", "", nil, 400, "ValidationException", "INVALID_SNAPSHOT_ID"},
			{"not-found", "GET", "/snapshots/snap-0123456789abcdef0/blocks", "", nil, 404, "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND"},
			{"conflict", "POST", "/snapshots", `{"VolumeSize":2,"ClientToken":"c1"}`, nil, 409, "ConflictException", ""},
			{"concurrent-limit", "POST", "/snapshots", `{"VolumeSize":1}`, nil, 400, "ConcurrentLimitExceededException", ""},
			{"internal", "POST", "/snapshots/completion/" + pending, "", map[string]string{"x-amz-ChangedBlocksCount": "0"}, 500, "InternalServerException", ""},
			{"throttled-1", "GET", "/snapshots/" + done + "/blocks/0?blockToken=" + tok, "", nil, 200, "", ""},
			{"throttled-2", "GET", "/snapshots/" + done + "/blocks/0?blockToken=" + tok, "", nil, 400, "RequestThrottledException", "RESOURCE_LEVEL_THROTTLE"},
			{"unknown-operation", "DELETE", "/snapshots/" + done, "", nil, 404, "UnknownOperationException", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.raw(tc.method, tc.path, tc.hdr, strings.NewReader(tc.body))
				if tc.status == 200 {
					if resp.StatusCode != 200 {
						t.Fatalf("got %d %s, want 200", resp.StatusCode, body)
					}
					return
				}
				wantRawError(t, resp, body, tc.status, tc.typ, tc.reason)
			})
		}
		// The Go SDK maps the same responses onto its modeled types with Reason filled in.
		_, err := e.client.ListSnapshotBlocks(e.ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
		wantAPIError(t, err, "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND")
		_, err = e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
		wantAPIError(t, err, "ConcurrentLimitExceededException", "")
	})

	t.Run("check-32-request-id", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		for _, tc := range []struct{ method, path string }{
			{"POST", "/snapshots"}, {"GET", "/snapshots/" + id + "/blocks"}, {"GET", "/nowhere"},
			{"PUT", "/snapshots/" + id + "/blocks/0"}, {"POST", "/snapshots/completion/" + id},
		} {
			resp, _ := e.raw(tc.method, tc.path, nil, strings.NewReader(`{"VolumeSize":1}`))
			if got := resp.Header.Get("X-Amzn-Requestid"); !uuidRe.MatchString(got) {
				t.Errorf("%s %s (%d): x-amzn-RequestId %q, want a UUID", tc.method, tc.path, resp.StatusCode, got)
			}
		}
		out, err := e.client.StartSnapshot(e.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		if rid, ok := awsmw.GetRequestIDMetadata(out.ResultMetadata); !ok || !uuidRe.MatchString(rid) {
			t.Errorf("SDK request id: got %q", rid)
		}
	})

	t.Run("check-33-throttle-and-concurrent-limit", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{Throttle: ebsfake.Throttle{PutPerSnapshot: 1}})
		id := e.start(nil)
		for i := range int32(3) {
			e.mustPut(id, i, fill(byte(i)))
		}
		st := e.srv.Stats()
		if st.Throttled != 2 || st.Requests[ebsfake.OpPutSnapshotBlock] != 5 || st.BlocksStored != 3 {
			t.Errorf("got %d throttled, %d put requests, %d stored; want 2, 5, 3", st.Throttled, st.Requests[ebsfake.OpPutSnapshotBlock], st.BlocksStored)
		}
		resp, body := e.raw("PUT", "/snapshots/"+id+"/blocks/3", map[string]string{"x-amz-Data-Length": "524288"}, nil)
		wantRawError(t, resp, body, 400, "RequestThrottledException", "RESOURCE_LEVEL_THROTTLE")

		e2 := newEnv(t, ebsfake.Options{})
		for range 100 {
			e2.start(nil)
		}
		_, err := e2.client.StartSnapshot(e2.ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
		wantAPIError(t, err, "ConcurrentLimitExceededException", "")
		if n := e2.srv.Stats().Requests[ebsfake.OpStartSnapshot]; n != 101 {
			t.Errorf("StartSnapshot requests: got %d, want 101 (no retry of ConcurrentLimitExceeded)", n)
		}
	})

	t.Run("check-34-internal-error-retried", func(t *testing.T) {
		e := newEnv(t, ebsfake.Options{})
		id := e.start(nil)
		e.srv.AddFault(ebsfake.Rule{Op: ebsfake.OpPutSnapshotBlock, SnapshotID: id, Nth: 1, Fault: ebsfake.FaultInternal})
		e.mustPut(id, 5, fill(5))
		st := e.srv.Stats()
		if st.Faults != 1 || st.Requests[ebsfake.OpPutSnapshotBlock] != 2 || st.BlocksStored != 1 {
			t.Errorf("got %d faults, %d put requests, %d stored; want 1, 2, 1", st.Faults, st.Requests[ebsfake.OpPutSnapshotBlock], st.BlocksStored)
		}
		if err := e.complete(id, map[int32][]byte{5: fill(5)}); err != nil {
			t.Fatal(err)
		}
		e.wantStatus(id, ebsfake.StatusCompleted)
	})
}
