package staticpod

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

func TestEdit(t *testing.T) {
	t.Parallel()
	gnu, err := exec.LookPath("sed")
	if err != nil {
		t.Fatalf("the sed command the lab shows cannot be checked: %v", err)
	}
	if runtime.GOOS != "linux" {
		t.Skipf("the GNU sed commands are checked on Linux; here (%s) TestEditBSD checks the ones shown", runtime.GOOS)
	}
	checkEdit(t, Sed, gnu)
}

// TestEditBSD checks the commands shown on macOS (SedBSD) with a BSD sed:
// the system's on macOS and the BSDs, else $ANONLAB_BSD_SED.
func TestEditBSD(t *testing.T) {
	t.Parallel()
	bsd := os.Getenv("ANONLAB_BSD_SED")
	if runtime.GOOS != "linux" && bsd == "" {
		bsd = "sed"
	}
	if bsd == "" {
		t.Skip("no BSD sed on Linux: set ANONLAB_BSD_SED to one (Apple's text_cmds/sed builds on Linux) to check the commands shown on macOS; the workflow's macOS job checks them with the system's")
	}
	checkEdit(t, SedBSD, bsd)
}

// checkEdit checks Edit on each case, and that the command show makes of
// the same edit, run by bash with sed as the sed command, writes the same
// file.
func checkEdit(t *testing.T, show func(set, remove []string, file string) (string, error), sed string) {
	orig := readManifest(t)
	under := func(items ...string) string {
		return strings.Replace(orig, commandLine, commandLine+strings.Join(items, ""), 1)
	}
	withFlag := under("    - --anonymous-auth=false\n")
	cases := []struct {
		Name        string
		In          string
		Set, Remove []string
		Want        string
	}{
		{"add under kube-apiserver, as the article does", orig, []string{"--anonymous-auth=false"}, nil, withFlag},
		{"set again", withFlag, []string{"--anonymous-auth=true"}, nil, under("    - --anonymous-auth=true\n")},
		{"remove gives back kubeadm's file byte for byte", withFlag, nil, []string{"--anonymous-auth"}, orig},
		{
			"a kubeadm flag moves under kube-apiserver with its new value", orig, []string{"--authorization-mode=RBAC"}, nil,
			strings.Replace(under("    - --authorization-mode=RBAC\n"), "    - --authorization-mode=Node,RBAC\n", "", 1),
		},
		{
			"swap a flag for a file", withFlag, []string{"--authentication-config=/etc/kubernetes/pki/anonlab/authn.yaml"}, []string{"--anonymous-auth"},
			under("    - --authentication-config=/etc/kubernetes/pki/anonlab/authn.yaml\n"),
		},
		{"a value that needs quoting", orig, []string{"--x=a: b"}, nil, under("    - '--x=a: b'\n")},
		{"a quoted item goes too", under("    - '--x=a: b'\n"), nil, []string{"--x"}, orig},
		{
			"several, in order", orig, []string{"--anonymous-auth=false", "--v=2"}, nil,
			under("    - --anonymous-auth=false\n", "    - --v=2\n"),
		},
		{
			"duplicates of a set flag go", under("    - --anonymous-auth=true\n", "    - --anonymous-auth=true\n"), []string{"--anonymous-auth=false"}, nil,
			withFlag,
		},
		{"a flag whose name starts the same stays", under("    - --anonymous-auth-x=1\n"), nil, []string{"--anonymous-auth"}, under("    - --anonymous-auth-x=1\n")},
		{"a backslash in a value", orig, []string{`--x=a\b`}, nil, under("    - --x=a\\b\n")},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			got, err := Edit([]byte(tc.In), tc.Set, tc.Remove)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.Want {
				t.Errorf("Edit:\n%s\nwant:\n%s", got, tc.Want)
			}
			// The command shown to a person makes the same file.
			file := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
			if err := os.WriteFile(file, []byte(tc.In), 0o600); err != nil {
				t.Fatal(err)
			}
			command, err := show(tc.Set, tc.Remove, `"$F"`)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-c", `sed() { "$SED" "$@"; }; `+command)
			cmd.Env = append(os.Environ(), "F="+file, "SED="+sed)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", command, err, out)
			}
			edited, _ := os.ReadFile(file)
			if string(edited) != tc.Want {
				t.Errorf("%s gives:\n%s\nwant:\n%s", command, edited, tc.Want)
			}
			if left, _ := filepath.Glob(file + "?*"); len(left) > 0 {
				t.Errorf("%s left %q beside the manifest", command, left)
			}
		})
	}
}

func TestEditRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name string
		In   string
	}{
		{"no command", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n"},
		{"not YAML", "    - kube-apiserver\n  bad: [\n"},
		{"another indent", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command:\n      - kube-apiserver\n"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if _, err := Edit([]byte(tc.In), []string{"--anonymous-auth=false"}, nil); err == nil {
				t.Error("Edit: no error")
			}
		})
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	flags, err := Flags([]byte(readManifest(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 28 || flags[0] != "--advertise-address=172.18.0.2" || flags[27] != "--runtime-config=" || slices.Contains(flags, "kube-apiserver") {
		t.Errorf("Flags = %q", flags)
	}
	if got := cluster.AnonymousAuth(flags); got != "on" {
		t.Errorf("AnonymousAuth = %q, want on", got)
	}
}
