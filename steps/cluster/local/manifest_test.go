package local

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// someArgs are flags of the kinds the backend writes, with one value that
// YAML must quote.
var someArgs = []string{
	"--etcd-servers=http://127.0.0.1:2379",
	"--secure-port=6443",
	"--tls-cert-file=/tmp/anonlab-local-1/apiserver.crt",
	"--authorization-mode=Node,RBAC",
	"--x=a: b",
}

// TestRenderManifest: the manifest reads back as the flags, and the edit
// the lab makes (staticpod.Edit) and the one it shows (hostSed, run by
// bash with this machine's sed) work on it and agree.
func TestRenderManifest(t *testing.T) {
	t.Parallel()
	data, err := renderManifest("/cache/v1.37.2", someArgs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := staticpod.Flags(data); err != nil || !slices.Equal(got, someArgs) {
		t.Fatalf("Flags = %q, %v; want %q", got, err, someArgs)
	}
	set, remove := []string{"--anonymous-auth=false"}, []string{"--authorization-mode"}
	edited, err := staticpod.Edit(data, set, remove)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--anonymous-auth=false", "--etcd-servers=http://127.0.0.1:2379", "--secure-port=6443", "--tls-cert-file=/tmp/anonlab-local-1/apiserver.crt", "--x=a: b"}
	if got, err := staticpod.Flags(edited); err != nil || !slices.Equal(got, want) {
		t.Errorf("edited manifest's flags = %q, %v; want %q", got, err, want)
	}
	file := filepath.Join(t.TempDir(), manifestFile)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sed, err := hostSed(set, remove, `"$KUBE_APISERVER_MANIFEST"`)
	if err != nil {
		t.Fatal(err)
	}
	runBash(t, sed, "KUBE_APISERVER_MANIFEST="+file)
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, edited) {
		t.Errorf("after %s the manifest is\n%s\nwant (staticpod.Edit)\n%s", sed, got, edited)
	}
}

// TestDescribeChange runs the commands the backend shows, verbatim, in a
// shell with `anonlab env`'s variables: the file lands where the flag
// says, and the manifest is the one the lab itself would write.
func TestDescribeChange(t *testing.T) {
	t.Parallel()
	b := New()
	b.dir = filepath.Join(t.TempDir(), "lab dir") // a path that needs quoting
	if err := os.Mkdir(b.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	orig, err := renderManifest("/cache/v1.37.2", someArgs)
	if err != nil {
		t.Fatal(err)
	}
	b.bin, b.pod = "/cache/v1.37.2", &pod{args: someArgs}
	if err := b.writeManifests(); err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	authn := []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n")
	if err := os.WriteFile(filepath.Join(manifests, "authn-source.yaml"), authn, 0o600); err != nil {
		t.Fatal(err)
	}
	change := cluster.APIServerChange{
		Set:     []string{"--authentication-config=" + cluster.FilesDirPlaceholder + "/authn.yaml"},
		Remove:  []string{"--anonymous-auth"},
		Files:   map[string][]byte{"authn.yaml": authn},
		Sources: map[string]string{"authn.yaml": "authn-source.yaml"},
	}
	got := b.DescribeChange(change)
	files := filepath.Join(b.dir, "files")
	want := "mkdir -p '" + files + `' && cp "$MANIFESTS"/authn-source.yaml '` + files + "/authn.yaml'\n" +
		`sed -i -E -e '/^[[:space:]]*- ['\''"]?(--authentication-config|--anonymous-auth)(=|['\''"]?$)/d' ` +
		`-e '/^    - kube-apiserver$/a\    - --authentication-config=` + files + `/authn.yaml' "$KUBE_APISERVER_MANIFEST"`
	if got != want {
		t.Fatalf("DescribeChange =\n%s\nwant\n%s", got, want)
	}
	runBash(t, got, "MANIFESTS="+manifests, "KUBE_APISERVER_MANIFEST="+b.manifestPath())
	if data, err := os.ReadFile(filepath.Join(files, "authn.yaml")); err != nil || !bytes.Equal(data, authn) {
		t.Errorf("the file the flag names holds %q (%v), want the scenario's", data, err)
	}
	edited, err := staticpod.Edit(orig, change.SetIn(files), change.Remove)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(b.manifestPath()); err != nil || !bytes.Equal(data, edited) {
		t.Errorf("manifest after the shown commands:\n%s\nwant (what ReconfigureAPIServer writes):\n%s", data, edited)
	}
	if backup, err := os.ReadFile(b.backupPath()); err != nil || !bytes.Equal(backup, orig) {
		t.Errorf("the backup changed: %q, %v", backup, err)
	}
}

// runBash runs script with bash -e, with env added to the test's own.
func runBash(t *testing.T, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -c %q: %v\n%s", script, err, out)
	}
}
