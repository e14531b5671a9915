package kind

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
)

// fakeDocker puts on PATH a docker that answers but has no images and
// cannot reach a registry, as on a machine with no registry.
func fakeDocker(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
case "$1 $2" in
"info --format") echo '{"ServerVersion":"20.10.24","CgroupVersion":"2"}' ;;
"image inspect") echo "Error: No such image: $3" >&2; exit 1 ;;
"pull "*) echo "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host" >&2; exit 1 ;;
*) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func TestCreateWithoutRegistry(t *testing.T) {
	fakeDocker(t)
	b := New(WithKubernetesVersion("v1.37.2"))
	err := b.Create(context.Background())
	if !errors.Is(err, cluster.ErrNotAvailable) {
		t.Fatalf("Create = %v, want ErrNotAvailable", err)
	}
	for _, want := range []string{DefaultNodeImage, "could not be pulled", "no such host", "make kind-node-image", "anonlab/node:v1.37.2", "--backend local"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Create's error does not say %q:\n%v", want, err)
		}
	}
	if b.ClusterName() != "" {
		t.Errorf("a cluster %q was started", b.ClusterName())
	}
}
