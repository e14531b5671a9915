package app

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/report"
)

// TestMatrixRefusesOneBinaryForSeveralVersions: an override that gives
// every column the same kube-apiserver is bad usage with two versions, and
// nothing starts.
func TestMatrixRefusesOneBinaryForSeveralVersions(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"binaries env", map[string]string{"ANONLAB_BINARIES_DIR": "/opt/k8s"}, []string{"--backend", "local"}, "$ANONLAB_BINARIES_DIR=/opt/k8s"},
		{"envtest assets", map[string]string{"KUBEBUILDER_ASSETS": "/opt/envtest"}, []string{"--backend", "local"}, "$KUBEBUILDER_ASSETS=/opt/envtest"},
		{"binaries flag", nil, []string{"--backend", "local", "--binaries-dir", "/opt/k8s"}, "--binaries-dir /opt/k8s"},
		{"node image env", map[string]string{"ANONLAB_NODE_IMAGE": "anonlab/node:v1.37.2"}, []string{"--backend", "kind"}, "$ANONLAB_NODE_IMAGE=anonlab/node:v1.37.2"},
		{"node image flag", nil, []string{"--backend", "kind", "--node-image", "anonlab/node:v1.37.2"}, "--node-image anonlab/node:v1.37.2"},
		{"auto with binaries", map[string]string{"ANONLAB_BINARIES_DIR": "/opt/k8s"}, []string{"--backend", "auto"}, "$ANONLAB_BINARIES_DIR=/opt/k8s"},
		{"existing cluster", nil, []string{"--backend", "existing"}, "--backend existing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, env := range []string{"ANONLAB_BINARIES_DIR", "KUBEBUILDER_ASSETS", "ANONLAB_NODE_IMAGE"} {
				t.Setenv(env, tc.env[env])
			}
			args := append([]string{"matrix", "anonymous-auth", "--kubernetes-versions", "v1.36.3,v1.37.2"}, tc.args...)
			code, out, errOut := run(t, args...)
			if code != ExitBadUsage {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errOut)
			}
			if !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "same kube-apiserver") {
				t.Errorf("stderr %q does not name %q as giving every version the same kube-apiserver", errOut, tc.want)
			}
			if out != "" || strings.Contains(errOut, "anonymous-auth on v") {
				t.Errorf("something started: stdout %q, stderr %q", out, errOut)
			}
		})
	}
	t.Run("twice the same version", func(t *testing.T) {
		code, out, errOut := run(t, "matrix", "anonymous-auth", "--kubernetes-versions", "v1.37.2, v1.37.2")
		if code != ExitBadUsage || !strings.Contains(errOut, "v1.37.2 is given twice") || out != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 2 and v1.37.2 named as given twice", code, out, errOut)
		}
	})
}

// TestPinnedByIgnoresOtherBackends: an override for the other backend
// (a node image in the environment of a local matrix) pins nothing.
func TestPinnedByIgnoresOtherBackends(t *testing.T) {
	t.Setenv("ANONLAB_NODE_IMAGE", "anonlab/node:v1.37.2")
	t.Setenv("ANONLAB_BINARIES_DIR", "/opt/k8s")
	t.Setenv("KUBEBUILDER_ASSETS", "")
	if pins := pinnedBy("local", "", ""); len(pins) != 1 || pins[0] != "$ANONLAB_BINARIES_DIR=/opt/k8s" {
		t.Errorf("local: pinned by %q, want only $ANONLAB_BINARIES_DIR", pins)
	}
	if pins := pinnedBy("kind", "", ""); len(pins) != 1 || pins[0] != "$ANONLAB_NODE_IMAGE=anonlab/node:v1.37.2" {
		t.Errorf("kind: pinned by %q, want only $ANONLAB_NODE_IMAGE", pins)
	}
}

func TestSameObserved(t *testing.T) {
	observed := func(v string) *report.Observer {
		o := report.NewObserver()
		o.Emit(steps.ClusterState{Step: "create", Backend: "local", KubernetesVersion: v, Running: true})
		return o
	}
	versions := []string{"v1.35.4", "v1.36.3", "v1.37.2"}
	distinct := map[string]*report.Observer{"v1.35.4": observed("v1.35.4"), "v1.36.3": report.NewObserver(), "v1.37.2": observed("v1.37.2")}
	if err := sameObserved(versions, distinct); err != nil {
		t.Errorf("distinct versions (one not observed): %v", err)
	}
	same := map[string]*report.Observer{"v1.35.4": observed("v1.37.2"), "v1.36.3": observed("v1.36.3"), "v1.37.2": observed("v1.37.2")}
	err := sameObserved(versions, same)
	if err == nil || !strings.Contains(err.Error(), "v1.35.4 and v1.37.2 both ran kube-apiserver v1.37.2") {
		t.Errorf("two columns on v1.37.2: error %v, want one naming v1.35.4 and v1.37.2", err)
	}
}

// TestMatrixHeaderObserved runs a one-column matrix on the cached binaries
// while asking for another release: the header says what really ran.
func TestMatrixHeaderObserved(t *testing.T) {
	needCluster(t)
	dir, err := binaries.Resolve(context.Background(), "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"ANONLAB_BINARIES_DIR", "KUBEBUILDER_ASSETS"} {
		t.Setenv(env, "")
	}
	code, out, errOut := run(t, "matrix", "--file", "testdata/wrong-expectation.yaml", "--kubernetes-versions", "v1.36.3", "--binaries-dir", dir, "--lang", "en")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1 (the scenario's expectation is wrong)\nstderr:\n%s", code, errOut)
	}
	if header := strings.SplitN(out, "\n", 2)[0]; header != "| step | v1.36.3 (observed v1.37.2) |" {
		t.Errorf("header %q, want the observed v1.37.2 beside the requested v1.36.3\n%s", header, out)
	}
}

// TestMatrixVersions: make matrix's default columns are the ones
// `anonlab matrix --all` runs and names in docs/behaviour.md.
func TestMatrixVersions(t *testing.T) {
	data, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MATRIX_VERSIONS \?= (.*)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no MATRIX_VERSIONS ?= line in the Makefile")
	}
	if got, want := strings.Fields(string(m[1])), BehaviourVersions; !slices.Equal(got, want) {
		t.Errorf("Makefile MATRIX_VERSIONS %v, BehaviourVersions %v", got, want)
	}
}

// TestMatrixAllUsage: --all stands for the scenario; with a name or a
// file as well it is bad usage and nothing starts.
func TestMatrixAllUsage(t *testing.T) {
	for _, args := range [][]string{
		{"matrix", "--all", "anonymous-auth"},
		{"matrix", "--all", "--file", "x.yaml"},
	} {
		code, out, errOut := run(t, args...)
		if code != ExitBadUsage || !strings.Contains(errOut, "--all") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 naming --all", args, code, out, errOut)
		}
	}
}

// TestBehaviourDocObserved: `anonlab matrix --all` on the default version
// observes today what docs/behaviour.md's column for it says, cell for cell
// (the file is current, and nothing in it depends on the run: no timings,
// ports or paths).
func TestBehaviourDocObserved(t *testing.T) {
	needCluster(t)
	v := cluster.DefaultKubernetesVersion
	committed, err := os.ReadFile("../../../docs/behaviour.md")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "matrix", "--all", "--backend", "local", "--lang", "en", "--kubernetes-versions", v)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, errOut)
	}
	want, got := behaviourColumn(string(committed), v), behaviourColumn(out, v)
	if len(want) == 0 {
		t.Fatalf("docs/behaviour.md has no %s column", v)
	}
	if !slices.Equal(got, want) {
		t.Errorf("observed on %s:\n%s\ndocs/behaviour.md says:\n%s\n(make matrix rewrites it)", v, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// behaviourColumn is each table row's step and its cell in the column of
// version, from a behaviour document.
func behaviourColumn(doc, version string) []string {
	var rows []string
	col := -1
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		switch {
		case strings.HasPrefix(line, "| step |"):
			col = slices.IndexFunc(cells, func(c string) bool { return strings.Fields(c)[0] == version })
		case strings.HasPrefix(line, "| ") && col > 0 && col < len(cells):
			rows = append(rows, strings.TrimSpace(cells[0])+" → "+strings.TrimSpace(cells[col]))
		}
	}
	return rows
}
