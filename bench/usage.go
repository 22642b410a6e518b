package bench

import (
	"cmp"
	"slices"
)

// UsageJSON is a [Usage] in seconds and bytes: the shape the drivers print
// with -json.
type UsageJSON struct {
	WallSeconds float64 `json:"wall_seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	MaxRSS      int64   `json:"max_rss_bytes"`
	ReadBytes   int64   `json:"read_bytes"`
	WriteBytes  int64   `json:"write_bytes"`
	RChar       int64   `json:"rchar"`
	WChar       int64   `json:"wchar"`
}

// MedianUsage returns each counter's own median over us, and the index in
// us of the run whose wall time is that median, so that a driver can
// report that run's other details. us must not be empty.
func MedianUsage(us []UsageJSON) (UsageJSON, int) {
	order := make([]int, len(us))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(us[a].WallSeconds, us[b].WallSeconds) })
	at := order[len(order)/2]
	med := func(f func(UsageJSON) float64) float64 {
		v := make([]float64, len(us))
		for i, u := range us {
			v[i] = f(u)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := us[at]
	m.CPUSeconds = med(func(u UsageJSON) float64 { return u.CPUSeconds })
	m.MaxRSS = int64(med(func(u UsageJSON) float64 { return float64(u.MaxRSS) }))
	m.ReadBytes = int64(med(func(u UsageJSON) float64 { return float64(u.ReadBytes) }))
	m.WriteBytes = int64(med(func(u UsageJSON) float64 { return float64(u.WriteBytes) }))
	m.RChar = int64(med(func(u UsageJSON) float64 { return float64(u.RChar) }))
	m.WChar = int64(med(func(u UsageJSON) float64 { return float64(u.WChar) }))
	return m, at
}
