package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"syscall"
)

// RequestCounts is what a [CountingProxy] saw: requests by HTTP method and
// by status class ("2xx", "3xx", "4xx", "5xx", or "error" when the server
// could not be reached), and the body bytes that went through it.
type RequestCounts struct {
	Total    int64            `json:"total"`
	ByMethod map[string]int64 `json:"by_method"`
	ByStatus map[string]int64 `json:"by_status"`
	// SentBytes is the request body bytes forwarded to the server (uploads).
	SentBytes int64 `json:"sent_bytes"`
	// ReceivedBytes is the response body bytes returned to the client
	// (downloads, listings, error documents).
	ReceivedBytes int64 `json:"received_bytes"`
}

// Sub returns the counts seen after prev was taken: c - prev, field by
// field. Methods and classes whose difference is zero are left out.
func (c RequestCounts) Sub(prev RequestCounts) RequestCounts {
	d := RequestCounts{
		Total:         c.Total - prev.Total,
		ByMethod:      map[string]int64{},
		ByStatus:      map[string]int64{},
		SentBytes:     c.SentBytes - prev.SentBytes,
		ReceivedBytes: c.ReceivedBytes - prev.ReceivedBytes,
	}
	sub := func(dst, a, b map[string]int64) {
		for k, v := range a {
			if n := v - b[k]; n != 0 {
				dst[k] = n
			}
		}
	}
	sub(d.ByMethod, c.ByMethod, prev.ByMethod)
	sub(d.ByStatus, c.ByStatus, prev.ByStatus)
	return d
}

// CountingProxy is an [http.Handler] that forwards every request to one
// HTTP server (the S3 server of the store benchmarks) and counts what goes
// through it, so a benchmark reports the requests a client really made
// rather than what the client says it made.
//
// It keeps the client's Host header, so requests signed for the proxy's
// address (AWS Signature V4 signs Host) verify at the server, and it adds
// no X-Forwarded-* headers. It is safe for concurrent use.
type CountingProxy struct {
	rp *httputil.ReverseProxy

	mu sync.Mutex
	c  RequestCounts
}

// NewCountingProxy returns a proxy to the server at target, an absolute
// http or https URL such as "http://127.0.0.1:9000".
func NewCountingProxy(target string) (*CountingProxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bench: proxy target %q: want an http(s)://HOST:PORT URL", target)
	}
	p := &CountingProxy{c: RequestCounts{ByMethod: map[string]int64{}, ByStatus: map[string]int64{}}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = u.Scheme, u.Host
			r.Out.Host = r.In.Host // keep the signed Host
		},
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			p.add(func(c *RequestCounts) { c.ByStatus[fmt.Sprintf("%dxx", resp.StatusCode/100)]++ })
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.add(func(c *RequestCounts) { c.ByStatus["error"]++ })
			http.Error(w, "bench: proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	return p, nil
}

func (p *CountingProxy) add(f func(*RequestCounts)) {
	p.mu.Lock()
	f(&p.c)
	p.mu.Unlock()
}

// ServeHTTP counts r and forwards it.
func (p *CountingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.add(func(c *RequestCounts) {
		c.Total++
		c.ByMethod[r.Method]++
	})
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, p: p}
	}
	p.rp.ServeHTTP(&countingWriter{ResponseWriter: w, p: p}, r)
}

// Counts returns a copy of the counts so far.
func (p *CountingProxy) Counts() RequestCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.c
	c.ByMethod = maps.Clone(p.c.ByMethod)
	c.ByStatus = maps.Clone(p.c.ByStatus)
	return c
}

type countingBody struct {
	io.ReadCloser
	p *CountingProxy
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if n > 0 {
		b.p.add(func(c *RequestCounts) { c.SentBytes += int64(n) })
	}
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	p *CountingProxy
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if n > 0 {
		w.p.add(func(c *RequestCounts) { c.ReceivedBytes += int64(n) })
	}
	return n, err
}

// Unwrap lets [http.ResponseController] reach the underlying writer (the
// reverse proxy flushes through it).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// DirStats is the size of a directory tree.
type DirStats struct {
	Files     int64 `json:"files"`           // regular files
	Bytes     int64 `json:"bytes"`           // sum of their sizes
	Allocated int64 `json:"allocated_bytes"` // sum of their allocated blocks, as du reports
}

// StatDir walks dir and returns the count, total size and allocated bytes
// of the regular files under it. A missing dir is empty, not an error.
func StatDir(dir string) (DirStats, error) {
	var s DirStats
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s.Files++
		s.Bytes += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s.Allocated += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("bench: stat directory %s: %w", dir, err)
	}
	return s, nil
}
