package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressOnlyOnTerminal(t *testing.T) {
	if p := newProgress(&bytes.Buffer{}, "x", false); p != nil {
		t.Errorf("progress on a buffer: got a bar, want none")
	}
	f, err := os.CreateTemp(t.TempDir(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := newProgress(f, "x", false); p != nil {
		t.Errorf("progress on a regular file: got a bar, want none")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Errorf("isTerminal(/dev/tty): got false, want true")
		}
		if p := newProgress(tty, "x", true); p != nil {
			t.Errorf("progress with --quiet: got a bar, want none")
		}
	}
	var nilBar *progressBar
	nilBar.Update(1, 2) // must not panic
	nilBar.Finish()
}

func TestProgressDrawsAndThrottles(t *testing.T) {
	var buf bytes.Buffer
	p := &progressBar{w: &buf, label: "copy", start: time.Now().Add(-2 * time.Second), every: time.Hour}
	p.Update(25<<20, 100<<20)
	first := buf.String()
	for _, want := range []string{"\rcopy [", "25.0%", "25 MiB / 100 MiB", "MiB/s", "ETA"} {
		if !strings.Contains(first, want) {
			t.Errorf("bar %q does not contain %q", first, want)
		}
	}
	p.Update(50<<20, 100<<20) // within the redraw interval: not drawn
	if buf.String() != first {
		t.Errorf("second update within the interval redrew: %q", buf.String())
	}
	p.every = 0
	p.Update(100<<20, 100<<20)
	if !strings.Contains(buf.String(), "100.0%") {
		t.Errorf("bar after the interval: %q, want 100.0%%", buf.String())
	}
	p.Finish()
	if !strings.HasSuffix(buf.String(), "\r") {
		t.Errorf("Finish: got %q, want the line cleared with a final carriage return", buf.String())
	}
}
