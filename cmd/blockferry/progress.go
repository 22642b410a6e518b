package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// isTerminal reports whether w is a character device (a terminal), the
// only place a progress bar is drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one self-overwriting line on a terminal: a bar, bytes
// done of total, rate and ETA. It redraws at most 10 times a second. A nil
// *progressBar is valid and draws nothing, so callers need not check.
type progressBar struct {
	w     io.Writer
	label string
	start time.Time
	every time.Duration

	mu       sync.Mutex
	last     time.Time
	drawn    bool
	done     int64
	total    int64
	lastLine int
}

// newProgress returns a bar on w when w is a terminal and quiet is false,
// and nil otherwise.
func newProgress(w io.Writer, label string, quiet bool) *progressBar {
	if quiet || !isTerminal(w) {
		return nil
	}
	return &progressBar{w: w, label: label, start: time.Now(), every: 100 * time.Millisecond}
}

// Update records done of total bytes and redraws if the last redraw was
// long enough ago. It is safe for concurrent use.
func (p *progressBar) Update(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	now := time.Now()
	if p.drawn && now.Sub(p.last) < p.every {
		return
	}
	p.last, p.drawn = now, true
	p.draw(now)
}

// Phase starts a new phase under label: the rate and ETA restart. It does
// nothing when label is the current one.
func (p *progressBar) Phase(label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if label != p.label {
		p.label, p.start, p.drawn = label, time.Now(), false
	}
}

// Finish clears the bar so that the results that follow start on a clean
// line.
func (p *progressBar) Finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLine))
	}
}

func (p *progressBar) draw(now time.Time) {
	elapsed := now.Sub(p.start)
	const width = 30
	frac := 0.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
		frac = min(max(frac, 0), 1)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	// Rate and ETA mean nothing in the first half second (holes and
	// skipped blocks count at once), so they wait.
	eta, rate := "--", "--"
	if elapsed >= 500*time.Millisecond {
		rate = humanRate(p.done, elapsed)
	}
	if p.done > 0 && p.total > p.done && elapsed >= 500*time.Millisecond {
		rest := time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))
		eta = humanDuration(rest.Round(time.Second))
	}
	line := fmt.Sprintf("%s [%s] %5.1f%% %s / %s  %s  ETA %s",
		p.label, bar, frac*100, humanBytes(p.done), humanBytes(p.total), rate, eta)
	pad := ""
	if n := p.lastLine - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.lastLine = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}
