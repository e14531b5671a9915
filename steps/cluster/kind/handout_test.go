package kind_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/cmd/anonlab/app"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/kind"
)

// TestHandoutOnKind runs the instructor's handout (`anonlab export
// anonymous-auth --format sh`) end to end, as an instructor would: bash,
// the kind CLI (built from the kind module the lab uses), kubectl, and the
// lab's node image. The script creates its cluster with the lab's kind
// configuration and stops at the first answer that differs from the
// article's.
func TestHandoutOnKind(t *testing.T) {
	_, image := kind.RequireKind(t)
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "kind"), "sigs.k8s.io/kind").CombinedOutput(); err != nil {
		t.Fatalf("build the kind CLI: %v\n%s", err, out)
	}
	path := []string{bin}
	if root, err := binaries.CacheRoot(); err == nil {
		path = append(path, filepath.Join(root, cluster.DefaultKubernetesVersion)) // kubectl, from make kind-node-image
	}
	var script, errOut strings.Builder
	if code := app.Run(app.IOStreams{In: strings.NewReader(""), Out: &script, Err: &errOut}, []string{"export", "anonymous-auth", "--format", "sh", "--lang", "en"}); code != app.ExitOK {
		t.Fatalf("export: exit %d: %s", code, errOut.String())
	}
	file := filepath.Join(t.TempDir(), "handout.sh")
	if err := os.WriteFile(file, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "anonlab-handout-test"
	t.Cleanup(func() { _ = kind.DeleteCluster(context.Background(), name) })
	cmd := exec.Command("bash", file)
	cmd.Env = append(os.Environ(), "CLUSTER="+name, "NODE_IMAGE="+image,
		"KUBECONFIG="+filepath.Join(t.TempDir(), "kubeconfig"),
		"PATH="+strings.Join(append(path, os.Getenv("PATH")), string(os.PathListSeparator)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the handout failed: %v\n%s", err, out)
	}
	for _, want := range []string{"→ 200", "→ 403", "→ 401", `User \"system:anonymous\" cannot get path \"/api\"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the handout's output lacks %q:\n%s", want, out)
		}
	}
}
