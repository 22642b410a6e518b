package replicate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blockferry/blockferry/blockdiff"
)

// peakSink records the most WriteBlock calls in flight at once.
type peakSink struct {
	writeOnly
	now, peak atomic.Int64
}

func (p *peakSink) WriteBlock(ctx context.Context, i int64, b []byte, d blockdiff.Digest) error {
	n := p.now.Add(1)
	defer p.now.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(200 * time.Microsecond)
	return p.writeOnly.WriteBlock(ctx, i, b, d)
}

// TestBounds: MaxInFlight caps the blocks in flight below Concurrency, and
// Concurrency caps them otherwise.
func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		maxInFlight int64
		want        int64
	}{
		{"memory bound", 8, 2 * testBS, 2},
		{"memory bound below one block", 8, 100, 1},
		{"concurrency bound", 3, 64 << 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &peakSink{writeOnly: writeOnly{prefilled(t, oldData)}}
			_, err := Run(context.Background(), memSource(t, newData), p, Options{Concurrency: tc.concurrency, MaxInFlight: tc.maxInFlight})
			if err != nil {
				t.Fatal(err)
			}
			got := p.peak.Load()
			if got > tc.want {
				t.Errorf("peak writes in flight: got %d, want at most %d", got, tc.want)
			}
			if tc.want > 1 && got < 2 {
				t.Errorf("peak writes in flight: got %d, want parallel writes (up to %d)", got, tc.want)
			}
		})
	}
}

// TestNoGoroutineLeak: after a failed and a cancelled run no goroutine of
// the engine is left.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		_, err := Run(context.Background(), failSource{memSource(t, newData), 30, syscall.EIO}, writeOnly{prefilled(t, oldData)}, Options{Concurrency: 8})
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("got %v, want EIO", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Run(ctx, memSource(t, newData), writeOnly{prefilled(t, oldData)}, Options{Concurrency: 8}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	}
	// A goroutine that has returned from its function may still be
	// counted for a moment while the runtime tears it down; wait briefly
	// before calling it a leak.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after the runs returned:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestLogger: the library is silent unless given a logger, which then
// hears the plan.
func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if _, err := Run(context.Background(), memSource(t, newData), prefilled(t, oldData), Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "plan=live-target") {
		t.Errorf("log %q does not name the plan", out)
	}
}
