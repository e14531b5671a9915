package app

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStartLinksNoScheme keeps client-go's typed clientset and discovery
// client out of the binary (docs/architecture.md): their
// k8s.io/client-go/kubernetes/scheme registers every API group at every
// start, --help included.
func TestStartLinksNoScheme(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/anonlab/anonlab/cmd/anonlab").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "k8s.io/client-go/kubernetes", "k8s.io/client-go/kubernetes/scheme", "k8s.io/client-go/discovery":
			t.Errorf("anonlab links %s: use steps/cluster/kube instead", pkg)
		}
	}
}
