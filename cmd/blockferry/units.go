package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// unitMultipliers maps a size suffix to its multiplier. Binary suffixes
// (KiB, MiB, ...) are powers of 1024; decimal ones (KB, MB, ...) powers of
// 1000. A bare letter (K, M, G, T) means the binary unit, as dd and most
// operators expect.
var unitMultipliers = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"m":   1 << 20,
	"g":   1 << 30,
	"t":   1 << 40,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
}

// parseBytes parses a byte count such as "4096", "512KiB", "64MiB", "100M"
// or "1.5GB".
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := unitMultipliers[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: use a number with an optional suffix such as 4096, 512KiB, 64MiB, 100M or 1GB", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %v", s, err)
	}
	v *= mult
	if v > math.MaxInt64 || v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes that fits in 63 bits", s)
	}
	return int64(v), nil
}

// parseRate parses a bandwidth such as "10MB/s", "100M", "1GiB/s" into bytes
// per second. The "/s" is optional.
func parseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "/s")
	v, err := parseBytes(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate: use bytes per second with an optional suffix such as 10MB/s or 100MiB/s", s)
	}
	return v, nil
}

// byteSize is a flag.Value holding a byte count parsed by [parseBytes].
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

// byteRate is a flag.Value holding bytes per second parsed by [parseRate].
type byteRate int64

func (r *byteRate) String() string { return strconv.FormatInt(int64(*r), 10) }
func (r *byteRate) Set(s string) error {
	v, err := parseRate(s)
	if err != nil {
		return err
	}
	*r = byteRate(v)
	return nil
}

// humanBytes formats n bytes with a binary unit: "0 B", "512 KiB", "1.5 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for math.Abs(f) >= unit && i < len(suffixes)-1 {
		f /= unit
		i++
	}
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f %s", f, suffixes[i])
	}
	return fmt.Sprintf("%.1f %s", f, suffixes[i])
}

// humanRate formats bytes moved over d as "123.4 MiB/s".
func humanRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return humanBytes(int64(float64(n)/d.Seconds())) + "/s"
}

// humanDuration rounds d for display: "850ms", "3.2s", "4m05s".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}
