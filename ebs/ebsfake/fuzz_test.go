package ebsfake_test

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// FuzzTokens feeds arbitrary page and block tokens to the handler: the answer is 200 or a
// 400 ValidationException with an INVALID_*_TOKEN reason, never a 5xx or a panic.
func FuzzTokens(f *testing.F) {
	srv, err := ebsfake.New(ebsfake.Options{TokenKey: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	// One completed snapshot with one block, seeded without HTTP.
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", "/snapshots", stringsReader(`{"VolumeSize":1}`)))
	id := jsonField(rec.Body.Bytes(), "SnapshotId")
	if err := srv.WriteBlock(id, 0, fill(1)); err != nil {
		f.Fatal(err)
	}
	if err := srv.SetState(id, ebsfake.StatusCompleted, ""); err != nil {
		f.Fatal(err)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/snapshots/"+id+"/blocks", nil))
	f.Add(jsonField(rec.Body.Bytes(), "Blocks.0.BlockToken"))
	f.Add("AAAA")
	f.Add("")
	f.Add("QgAAAAAAAAABAAAAAA==")
	f.Fuzz(func(t *testing.T, tok string) {
		for _, path := range []string{
			"/snapshots/" + id + "/blocks?pageToken=" + url.QueryEscape(tok),
			"/snapshots/" + id + "/blocks/0?blockToken=" + url.QueryEscape(tok),
			"/snapshots/" + id + "/changedblocks?pageToken=" + url.QueryEscape(tok),
		} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code == 200 {
				continue
			}
			if rec.Code != 400 || rec.Header().Get("x-amzn-ErrorType") != "ValidationException" {
				t.Fatalf("%s: got %d %s", path, rec.Code, rec.Body.Bytes())
			}
			if r := jsonField(rec.Body.Bytes(), "Reason"); r != "INVALID_PAGE_TOKEN" && r != "INVALID_BLOCK_TOKEN" {
				t.Fatalf("%s: Reason %q", path, r)
			}
		}
	})
}
