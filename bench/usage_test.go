package bench

import "testing"

func TestMedianUsage(t *testing.T) {
	us := []UsageJSON{
		{WallSeconds: 3, CPUSeconds: 1, MaxRSS: 10, WChar: 7},
		{WallSeconds: 1, CPUSeconds: 5, MaxRSS: 30, WChar: 9},
		{WallSeconds: 2, CPUSeconds: 3, MaxRSS: 20, WChar: 8, ReadBytes: 4},
	}
	got, at := MedianUsage(us)
	want := UsageJSON{WallSeconds: 2, CPUSeconds: 3, MaxRSS: 20, WChar: 8}
	if at != 2 {
		t.Errorf("median-wall run: got %d, want 2", at)
	}
	if got != want {
		t.Errorf("MedianUsage: got %+v, want %+v (each counter its own median)", got, want)
	}
	if got, at := MedianUsage(us[:1]); at != 0 || got != us[0] {
		t.Errorf("one run: got %+v at %d, want the run itself", got, at)
	}
}
