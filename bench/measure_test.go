package bench

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets the test binary act as a measured child: with
// BENCH_CHILD_READ set it reads that file, touches BENCH_CHILD_ALLOC bytes
// and exits with BENCH_CHILD_EXIT.
func TestMain(m *testing.M) {
	if p := os.Getenv("BENCH_CHILD_READ"); p != "" {
		if _, err := os.ReadFile(p); err != nil {
			os.Exit(3)
		}
		n, _ := strconv.Atoi(os.Getenv("BENCH_CHILD_ALLOC"))
		b := make([]byte, n)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		code, _ := strconv.Atoi(os.Getenv("BENCH_CHILD_EXIT"))
		runtime.KeepAlive(b)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data")
	const size = 16 << 20
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	const alloc = 96 << 20
	for _, tc := range []struct {
		name string
		sh   bool // run the child under sh, so the reader is a reaped grandchild
		exit int
	}{{"direct", false, 0}, {"grandchild", true, 0}, {"exit 4", false, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			if tc.sh {
				cmd = exec.Command("sh", "-c", `"$0"; exit $?`, os.Args[0])
			}
			cmd.Env = append(os.Environ(), "BENCH_CHILD_READ="+p,
				"BENCH_CHILD_ALLOC="+strconv.Itoa(alloc), "BENCH_CHILD_EXIT="+strconv.Itoa(tc.exit))
			u, err := Measure(cmd)
			var ee *exec.ExitError
			if tc.exit != 0 {
				if !errors.As(err, &ee) || ee.ExitCode() != tc.exit {
					t.Fatalf("Measure = %v, want an *exec.ExitError with code %d", err, tc.exit)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if u.RChar < size {
				t.Errorf("RChar = %d, want at least %d (the file read)", u.RChar, size)
			}
			if u.MaxRSS < alloc {
				t.Errorf("MaxRSS = %d, want at least %d (the buffer touched)", u.MaxRSS, alloc)
			}
			// The ceiling catches a unit mistake (KiB taken for bytes is
			// 1024x) with room for a -race child, whose shadow memory
			// makes it 4-5x the buffer.
			if u.MaxRSS > 16*alloc {
				t.Errorf("MaxRSS = %d, want under %d", u.MaxRSS, 16*alloc)
			}
			if u.Wall <= 0 || u.User+u.Sys <= 0 {
				t.Errorf("Wall %v, CPU %v, want both positive", u.Wall, u.User+u.Sys)
			}
		})
	}
}
