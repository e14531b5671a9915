package steps

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anonlab/anonlab/manifests"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"

	"github.com/anonlab/anonlab/steps/cluster"
)

// HandoutStep is one step as a person does it by hand on a kind cluster:
// the instructor's handout (anonlab export).
type HandoutStep struct {
	ID       string
	Title    string
	Explain  string
	Cleanup  bool
	Commands []string
	// Expect is what the answer must be, in words; empty when nothing is
	// checked.
	Expect string
}

// Where the handout keeps its files in the node; the shell variables its
// commands use (shell.go) are defined by the renderer.
const (
	handoutBackup = "/etc/kubernetes/kube-apiserver.yaml.orig"
	// handoutFiles is a directory the kube-apiserver static Pod of a
	// kubeadm cluster already mounts.
	handoutFiles = "/etc/kubernetes/pki"
)

// handouter is implemented by every step kind: its commands for the
// handout, in bash.
type handouter interface {
	handout(sc *Scenario, st *Step) []string
}

// handoutVersion is the Kubernetes version a handout is for: kind's node
// image is built for the default one.
const handoutVersion = cluster.DefaultKubernetesVersion

// Handout turns a scenario into the commands a person types on kind, for
// handoutVersion: steps for other versions are left out.
func Handout(sc *Scenario, lang string) []HandoutStep {
	var out []HandoutStep
	add := func(st *Step, cleanup bool) {
		if !st.Kubernetes.Holds(handoutVersion) || st.HasExpect() && st.ExpectFor(handoutVersion) == nil {
			return
		}
		h := HandoutStep{ID: st.ID, Title: st.Title.In(lang), Explain: strings.TrimSpace(st.Explain.In(lang)), Cleanup: cleanup}
		if ho, ok := st.Action.(handouter); ok {
			h.Commands = ho.handout(sc, st)
		}
		if e := st.ExpectFor(handoutVersion); e != nil {
			h.Expect = e.describe()
		}
		out = append(out, h)
	}
	for _, st := range sc.Steps {
		add(st, false)
	}
	for _, st := range sc.Cleanup {
		add(st, true)
	}
	return out
}

// describe says in one line what the expectation wants.
func (e *Expect) describe() string {
	var parts []string
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", e.Status))
	}
	if e.Reason != "" {
		parts = append(parts, "reason "+e.Reason)
	}
	if e.Message != "" {
		parts = append(parts, fmt.Sprintf("message %q", e.Message))
	}
	if e.MessageContains != "" {
		parts = append(parts, fmt.Sprintf("message containing %q", e.MessageContains))
	}
	for _, jp := range e.JSONPath {
		if jp.Equals != nil {
			parts = append(parts, fmt.Sprintf("%s = %q", jp.Path, *jp.Equals))
		} else {
			parts = append(parts, fmt.Sprintf("%s contains %q", jp.Path, *jp.Contains))
		}
	}
	if e.RolledBack {
		parts = append(parts, "kube-apiserver refuses to start and the previous manifest is put back")
	}
	if e.ErrorContains != "" {
		parts = append(parts, fmt.Sprintf("its error contains %q", e.ErrorContains))
	}
	return strings.Join(parts, ", ")
}

// heredoc feeds data to a command on stdin.
func heredoc(command string, data []byte) []string {
	return []string{command + " <<'EOF'", strings.TrimRight(string(data), "\n"), "EOF"}
}

// HandoutFiles are the files the handout's commands read from $MANIFESTS:
// every manifest the scenario names, as it is.
func HandoutFiles(sc *Scenario) (map[string][]byte, error) {
	r := &runner{scenario: sc}
	files := map[string][]byte{}
	err := r.eachManifest(func(name string, objects bool) error {
		data, err := readManifest(sc, name)
		files[name] = data
		return err
	})
	return files, err
}

func (c *clusterStep) handout(*Scenario, *Step) []string {
	if *c == "destroy" {
		return []string{`kind delete cluster --name "$CLUSTER"`}
	}
	config, _ := manifests.FS.ReadFile("kind-config.yaml")
	patch, _ := manifests.FS.ReadFile("kind-kubelet-cgroupv1.yaml")
	var indented strings.Builder
	for line := range strings.Lines(strings.TrimSpace(string(patch))) {
		indented.WriteString("    " + line)
	}
	out := heredoc("cat > kind-config.yaml", config)
	out = append(out, "# The lab's kind configuration: on a cgroup v1 host, the kubelet of Kubernetes 1.35+ must be told to run anyway.",
		`if [ "$(stat -fc %T /sys/fs/cgroup/)" != cgroup2fs ]; then`)
	out = append(out, heredoc("  cat >> kind-config.yaml", []byte("kubeadmConfigPatches:\n  - |\n"+indented.String()))...)
	return append(out, "fi",
		`kind create cluster --name "$CLUSTER" --config kind-config.yaml ${NODE_IMAGE:+--image "$NODE_IMAGE"} --wait 3m`,
		VarAPIServer+`=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')`,
		`kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$`+VarCACert+`"`,
	)
}

func (t *tokenStep) handout(*Scenario, *Step) []string {
	return []string{
		fmt.Sprintf(`until kubectl get serviceaccount %s --namespace %s >/dev/null 2>&1; do sleep 1; done`, t.ServiceAccount, t.Namespace),
		t.shellCommand(t.source(handoutVersion)),
	}
}

func (q *requestStep) handout(_ *Scenario, st *Step) []string {
	cmd := q.shellCommand()
	if e := st.ExpectFor(handoutVersion); e != nil && e.Status != 0 && q.As != "admin" {
		return []string{fmt.Sprintf("expect %d %s", e.Status, cmd)}
	}
	return []string{cmd}
}

func (a *applyStep) handout(*Scenario, *Step) []string { return []string{a.shellCommand()} }

func (d *deleteStep) handout(*Scenario, *Step) []string { return []string{d.shellCommand()} }

// handout edits the static-Pod manifest in the control-plane node as the
// article does, with the lab's own edit (staticpod.Sed), keeping a backup
// outside the manifests directory (the kubelet would run a second copy from
// inside it), and waits for the kubelet to start a new kube-apiserver
// container.
func (f *flagsStep) handout(_ *Scenario, st *Step) []string {
	exec := `docker exec "$` + VarNode + `" `
	manifest := `"$` + VarManifest + `"`
	out := []string{`old=$(docker exec "$NODE" crictl ps -q --name kube-apiserver)`}
	if f.Restore {
		out = append(out, exec+"cp "+handoutBackup+" "+manifest)
	} else {
		for _, name := range slices.Sorted(maps.Keys(f.Files)) {
			out = append(out, fmt.Sprintf("%s-i tee %s/%s >/dev/null < %s", exec, handoutFiles, name, manifestFile(f.Files[name])))
		}
		out = append(out, exec+"sh -c "+cluster.ShellQuote(`test -e `+handoutBackup+` || cp "$0" `+handoutBackup)+" "+manifest)
		change := cluster.APIServerChange{Set: f.Set, Remove: f.Remove}
		sed, err := staticpod.Sed(change.SetIn(handoutFiles), f.Remove, manifest)
		if err != nil {
			return append(out, "# "+err.Error())
		}
		out = append(out, exec+sed)
	}
	if e := st.ExpectFor(handoutVersion); e != nil && e.RolledBack {
		return append(out,
			"# kube-apiserver refuses to start; read why, then put the manifest back:",
			`sleep 20; docker exec "$NODE" sh -c 'crictl logs $(crictl ps -a -q --name kube-apiserver | head -1) 2>&1 | tail -3'`,
			exec+"cp "+handoutBackup+" "+manifest)
	}
	return append(out, `until new=$(docker exec "$NODE" crictl ps -q --name kube-apiserver) && [ -n "$new" ] && [ "$new" != "$old" ] && kubectl get --raw /livez >/dev/null 2>&1; do sleep 1; done`)
}
