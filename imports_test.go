package blockferry

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoCloudSDK enforces DESIGN.md's rule: the core packages
// never import a cloud SDK, so that embedding them costs no AWS dependency.
func TestCoreImportsNoCloudSDK(t *testing.T) {
	core := []string{"hashing", "blockdiff", "replicate", "source", "sink", "cas"}
	for _, pkg := range core {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps ./%s: %v\n%s", pkg, err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 {
				t.Fatalf("go list -deps ./%s printed nothing", pkg)
			}
			for _, d := range deps {
				for _, banned := range []string{"github.com/aws/", "cloud.google.com/", "github.com/Azure/", "/cas/s3", "/ebs"} {
					if strings.Contains(d, banned) {
						t.Errorf("%s imports %s (matches %q): the core must not depend on a cloud SDK or adapter", pkg, d, banned)
					}
				}
			}
		})
	}
}
