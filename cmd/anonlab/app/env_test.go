package app

import (
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// With two labs running, anonlab env refuses to guess (exit 2, naming
// both); --run picks one and prints its export lines, quoted for the shell.
func TestEnvSeveralLabs(t *testing.T) {
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	var ids []string
	for _, dir := range []string{"/tmp/anonlab-local-1", "/tmp/anonlab-local 2"} {
		e := ledger.NewEntry("local") // owned by this test: alive
		e.ID += dir[len(dir)-1:]
		e.URL, e.Kubeconfig = "https://127.0.0.1:6443", dir+"/admin.kubeconfig"
		e.Shell = &ledger.Shell{CAFile: dir + "/ca.crt", APIServerManifest: dir + "/manifests/kube-apiserver.yaml", Manifests: dir + "/scenario-manifests"}
		if err := e.Save(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	code, out, errOut := run(t, "env")
	if code != ExitBadUsage || out != "" || !strings.Contains(errOut, ids[0]) || !strings.Contains(errOut, ids[1]) {
		t.Errorf("env with two labs: exit %d, stdout %q, stderr %q; want 2 and both IDs", code, out, errOut)
	}
	code, out, errOut = run(t, "env", "--run", ids[1])
	want := "export KUBECONFIG='/tmp/anonlab-local 2/admin.kubeconfig'\n" +
		"export APISERVER=https://127.0.0.1:6443\n" +
		"export CACERT='/tmp/anonlab-local 2/ca.crt'\n" +
		"export KUBE_APISERVER_MANIFEST='/tmp/anonlab-local 2/manifests/kube-apiserver.yaml'\n" +
		"export MANIFESTS='/tmp/anonlab-local 2/scenario-manifests'\n"
	if code != ExitOK || out != want {
		t.Errorf("env --run: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}
