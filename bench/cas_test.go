package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCountingProxy sends a known mix of requests through the proxy to a
// real server on 127.0.0.1 and checks every counter, and that the server
// saw the client's Host header and bodies unchanged.
func TestCountingProxy(t *testing.T) {
	var (
		mu     sync.Mutex
		hosts  = map[string]bool{}
		stored int
	)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host] = true
		mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			stored += len(b)
			mu.Unlock()
		case http.MethodGet:
			io.WriteString(w, strings.Repeat("g", 1000))
		case http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer backend.Close()
	p, err := NewCountingProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()

	before := p.Counts()
	do := func(method string, body []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, front.URL+"/bucket/key", r)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { do(http.MethodGet, nil) })
	}
	wg.Wait()
	do(http.MethodPut, make([]byte, 5000))
	do(http.MethodPut, make([]byte, 7000))
	do(http.MethodHead, nil)
	do(http.MethodDelete, nil)

	got := p.Counts().Sub(before)
	checks := []struct {
		name      string
		got, want int64
	}{
		{"total", got.Total, 7},
		{"GET", got.ByMethod["GET"], 3},
		{"PUT", got.ByMethod["PUT"], 2},
		{"HEAD", got.ByMethod["HEAD"], 1},
		{"DELETE", got.ByMethod["DELETE"], 1},
		{"2xx", got.ByStatus["2xx"], 6},
		{"4xx", got.ByStatus["4xx"], 1},
		{"sent bytes", got.SentBytes, 12000},
		{"received bytes", got.ReceivedBytes, 3000},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %d, want %d (counts %+v)", c.got, c.want, got)
			}
		})
	}
	if stored != 12000 {
		t.Errorf("server received %d body bytes, want 12000", stored)
	}
	fh := strings.TrimPrefix(front.URL, "http://")
	if len(hosts) != 1 || !hosts[fh] {
		t.Errorf("server saw Host %v, want only the proxy's %s (signed requests need it)", hosts, fh)
	}
	if _, ok := got.ByMethod["POST"]; ok {
		t.Errorf("Sub kept a zero entry: %v", got.ByMethod)
	}
}

func TestCountingProxyBadTarget(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1:9000", "ftp://x", "http://"} {
		if _, err := NewCountingProxy(target); err == nil {
			t.Errorf("NewCountingProxy(%q): got nil error, want one", target)
		}
	}
}

func TestCountingProxyServerDown(t *testing.T) {
	backend := httptest.NewServer(http.NotFoundHandler())
	url := backend.URL
	backend.Close()
	p, err := NewCountingProxy(url)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	resp, err := http.Get(front.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("got status %d, want 502", resp.StatusCode)
	}
	if c := p.Counts(); c.Total != 1 || c.ByStatus["error"] != 1 {
		t.Errorf("got %+v, want 1 request with status class error", c)
	}
}

func TestStatDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, n := range map[string]int{"x": 10, "a/y": 4096, "a/b/z": 0} {
		if err := os.WriteFile(filepath.Join(dir, p), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A sparse file: 1 MiB long, nothing allocated.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := StatDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 4 || s.Bytes != 10+4096+1<<20 {
		t.Errorf("got %d files, %d bytes; want 4 files, %d bytes", s.Files, s.Bytes, 10+4096+1<<20)
	}
	if s.Allocated < 4096 || s.Allocated >= 1<<20 {
		t.Errorf("got %d allocated bytes, want at least 4096 and less than the sparse file's 1 MiB", s.Allocated)
	}
	s, err = StatDir(filepath.Join(dir, "missing"))
	if err != nil || s != (DirStats{}) {
		t.Errorf("missing dir: got %+v, %v; want empty, nil", s, err)
	}
}
