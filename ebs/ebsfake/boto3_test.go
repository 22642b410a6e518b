package ebsfake_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// python returns a python3 that can import boto3, preferring Debian's /usr/bin/python3
// (python3 on PATH may be a pyenv build without boto3).
func python(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			tried = append(tried, p+": not found")
			continue
		}
		if out, err := exec.Command(path, "-c", "import boto3").CombinedOutput(); err != nil {
			tried = append(tried, path+": cannot import boto3: "+strings.TrimSpace(string(out)))
			continue
		}
		return path
	}
	msg := "boto3 conformance needs python3 with boto3 (apt-get install python3-boto3): " + strings.Join(tried, "; ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBoto3Conformance runs testdata/conformance.py (the §9 checks through boto3) against
// a fake on 127.0.0.1.
func TestBoto3Conformance(t *testing.T) {
	py := python(t)
	var srv *ebsfake.Server
	srv, err := ebsfake.New(ebsfake.Options{
		// check-34: fail the first put of snapshots marked by their description.
		Inject: func(c ebsfake.Call) *ebsfake.Fault {
			if c.Op != ebsfake.OpPutSnapshotBlock || c.N != 1 {
				return nil
			}
			if info, ok := srv.Snapshot(c.SnapshotID); ok && info.Description == "ebsfake:fail-first-put" {
				return &ebsfake.FaultInternal
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/conformance.py", hs.URL)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKID", "AWS_SECRET_ACCESS_KEY=SECRET",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.CombinedOutput()
	t.Logf("conformance.py output:\n%s", out)
	if ctx.Err() != nil {
		t.Fatalf("conformance.py did not finish within 90 s")
	}
	if err != nil {
		t.Fatalf("conformance.py: %v", err)
	}
	if !strings.Contains(string(out), "0 failed") {
		t.Fatalf("conformance.py output has no summary line with 0 failed")
	}
}
