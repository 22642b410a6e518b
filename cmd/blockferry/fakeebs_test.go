package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFakeEBSServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fake-ebs", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()

	addrRE := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("fake-ebs stopped early: %v; stderr %q", err, errOut.String())
		default:
		}
	}
	if url == "" {
		t.Fatalf("fake-ebs did not print its address; stdout %q", out.String())
	}

	// Listing the blocks of an unknown snapshot is a well-formed EBS error.
	resp, err := http.Get(url + "/snapshots/snap-0123456789abcdef0/blocks")
	if err != nil {
		t.Fatalf("GET from the fake: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "ResourceNotFound") {
		t.Errorf("unknown snapshot: got %d %s, want 404 with ResourceNotFoundException", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fake-ebs after interrupt: got %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fake-ebs did not stop after its context was cancelled")
	}
}
