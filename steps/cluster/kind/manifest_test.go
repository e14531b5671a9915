package kind

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
)

// testdata/kube-apiserver.yaml is the manifest kubeadm v1.37 wrote in a
// kind node made by `make kind-node-image`.
func readManifest(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "kube-apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

const commandLine = "    - kube-apiserver\n"

func TestEditFlags(t *testing.T) {
	t.Parallel()
	orig := readManifest(t)
	withFlag := strings.Replace(orig, commandLine, commandLine+"    - --anonymous-auth=false\n", 1)
	cases := []struct {
		Name   string
		In     string
		Change cluster.APIServerChange
		Want   string
	}{
		{
			Name:   "add under kube-apiserver, as the article does",
			In:     orig,
			Change: cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}},
			Want:   withFlag,
		},
		{
			Name:   "replace in place",
			In:     withFlag,
			Change: cluster.APIServerChange{Set: []string{"--anonymous-auth=true"}},
			Want:   strings.Replace(withFlag, "--anonymous-auth=false", "--anonymous-auth=true", 1),
		},
		{
			Name:   "remove gives back kubeadm's file byte for byte",
			In:     withFlag,
			Change: cluster.APIServerChange{Remove: []string{"--anonymous-auth"}},
			Want:   orig,
		},
		{
			Name:   "replace an existing kubeadm flag",
			In:     orig,
			Change: cluster.APIServerChange{Set: []string{"--authorization-mode=RBAC"}},
			Want:   strings.Replace(orig, "--authorization-mode=Node,RBAC", "--authorization-mode=RBAC", 1),
		},
		{
			Name: "swap a flag for a file in the Pod's pki mount",
			In:   withFlag,
			Change: cluster.APIServerChange{
				Set:    []string{"--authentication-config=$(FILES)/authn.yaml"},
				Remove: []string{"--anonymous-auth"},
			},
			Want: strings.Replace(orig, commandLine, commandLine+"    - --authentication-config=/etc/kubernetes/pki/anonlab/authn.yaml\n", 1),
		},
		{
			Name:   "a value that needs quoting",
			In:     orig,
			Change: cluster.APIServerChange{Set: []string{"--x=a: b"}},
			Want:   strings.Replace(orig, commandLine, commandLine+"    - '--x=a: b'\n", 1),
		},
		{
			Name:   "setting what is there changes nothing",
			In:     orig,
			Change: cluster.APIServerChange{Set: []string{"--secure-port=6443"}},
			Want:   orig,
		},
		{
			Name:   "duplicates of a set flag go",
			In:     strings.Replace(withFlag, "    - --secure-port", "    - --anonymous-auth=true\n    - --secure-port", 1),
			Change: cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}},
			Want:   withFlag,
		},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			got, edits, err := editFlags([]byte(tc.In), tc.Change, filesDir)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.Want {
				t.Errorf("editFlags:\n%s\nwant:\n%s", got, tc.Want)
			}
			// The sed command shown to the user makes the same file.
			if _, err := exec.LookPath("sed"); err != nil || len(edits) == 0 {
				return
			}
			file := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
			if err := os.WriteFile(file, []byte(tc.In), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{"-i"}, sedScript("    ", edits)...), file)
			if out, err := exec.Command("sed", args...).CombinedOutput(); err != nil {
				t.Fatalf("sed %q: %v: %s", args, err, out)
			}
			sed, _ := os.ReadFile(file)
			if string(sed) != tc.Want {
				t.Errorf("sed %q gives:\n%s\nwant:\n%s", args, sed, tc.Want)
			}
		})
	}
}

func TestEditFlagsRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name string
		In   string
	}{
		{"no command", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n"},
		{"not YAML once edited", "    - kube-apiserver\n  bad: [\n"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := editFlags([]byte(tc.In), cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}, filesDir); err == nil {
				t.Error("editFlags: no error")
			}
		})
	}
}

func TestManifestFlags(t *testing.T) {
	t.Parallel()
	flags, err := manifestFlags([]byte(readManifest(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 28 || flags[0] != "--advertise-address=172.18.0.2" || flags[27] != "--runtime-config=" || slices.Contains(flags, "kube-apiserver") {
		t.Errorf("manifestFlags = %q", flags)
	}
	if got := cluster.AnonymousAuth(flags); got != "on" {
		t.Errorf("AnonymousAuth = %q, want on", got)
	}
}
