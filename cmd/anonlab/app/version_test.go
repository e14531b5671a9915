package app

import (
	"runtime"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
)

// `anonlab version` and `anonlab --version` say the same: the lab's
// version, its Go version and the default Kubernetes version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := run(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, want := range []string{"anonlab ", runtime.Version(), "default Kubernetes version: " + cluster.DefaultKubernetesVersion} {
			if !strings.Contains(out, want) {
				t.Errorf("%v printed %q, want %q in it", args, out, want)
			}
		}
	}
}
