package steps

import (
	"fmt"
	"strings"

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

// Shell variables the handout's commands rely on; a renderer defines them.
const (
	handoutNode     = `"$NODE"`
	handoutManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	handoutBackup   = "/etc/kubernetes/kube-apiserver.yaml.orig"
	// handoutFiles is a directory the kube-apiserver static Pod of a
	// kubeadm cluster already mounts.
	handoutFiles = "/etc/kubernetes/pki"
)

// handouter is implemented by every step kind: its commands for the
// handout, in bash.
type handouter interface {
	handout(sc *Scenario, st *Step) []string
}

// Handout turns a scenario into the commands a person types on kind.
func Handout(sc *Scenario, lang string) []HandoutStep {
	var out []HandoutStep
	add := func(st *Step, cleanup bool) {
		h := HandoutStep{ID: st.ID, Title: st.Title.In(lang), Explain: strings.TrimSpace(st.Explain.In(lang)), Cleanup: cleanup}
		if ho, ok := st.Action.(handouter); ok {
			h.Commands = ho.handout(sc, st)
		}
		if st.Expect != nil {
			h.Expect = st.Expect.describe()
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

// heredoc feeds a manifest to a command on stdin.
func heredoc(command string, data []byte) []string {
	return []string{command + " <<'EOF'", strings.TrimRight(string(data), "\n"), "EOF"}
}

func (c *clusterStep) handout(*Scenario, *Step) []string {
	if *c == "destroy" {
		return []string{`kind delete cluster --name "$CLUSTER"`}
	}
	return []string{
		`kind create cluster --name "$CLUSTER" ${NODE_IMAGE:+--image "$NODE_IMAGE"} --wait 3m`,
		`APISERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')`,
		`kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > ca.crt`,
	}
}

func (t *tokenStep) handout(*Scenario, *Step) []string {
	return []string{
		fmt.Sprintf(`until kubectl get serviceaccount %s --namespace %s >/dev/null 2>&1; do sleep 1; done`, t.ServiceAccount, t.Namespace),
		fmt.Sprintf(`%s=$(kubectl create token %s --namespace %s)`, tokenVariable(t.SaveAs), t.ServiceAccount, t.Namespace),
	}
}

func tokenVariable(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (q *requestStep) handout(_ *Scenario, st *Step) []string {
	curl := "curl -sS --cacert ca.crt"
	if q.Method == "HEAD" {
		curl += " --head"
	}
	switch {
	case q.Token != "":
		curl += fmt.Sprintf(` -H "Authorization: Bearer $%s"`, tokenVariable(q.Token))
	case q.As == "admin":
		return []string{"kubectl get --raw " + cluster.ShellQuote(q.Path)}
	}
	cmd := fmt.Sprintf(`%s "$APISERVER%s"`, curl, q.Path)
	if st.Expect != nil && st.Expect.Status != 0 {
		return []string{fmt.Sprintf("expect %d %s", st.Expect.Status, cmd)}
	}
	return []string{cmd}
}

func (a *applyStep) handout(sc *Scenario, _ *Step) []string {
	return manifestHandout(sc, a.Manifests, "kubectl apply --server-side -f -")
}

func (d *deleteStep) handout(sc *Scenario, _ *Step) []string {
	return manifestHandout(sc, d.Manifests, "kubectl delete --ignore-not-found -f -")
}

func manifestHandout(sc *Scenario, names []string, command string) []string {
	var out []string
	for _, name := range names {
		data, err := readManifest(sc, name)
		if err != nil {
			out = append(out, "# "+name+": "+err.Error())
			continue
		}
		out = append(out, "# "+name)
		out = append(out, heredoc(command, data)...)
	}
	return out
}

// handout edits the static-Pod manifest in the control-plane node as the
// article does, keeping a backup outside the manifests directory (the
// kubelet would run a second copy from inside it), and waits for the
// kubelet to start a new kube-apiserver container.
func (f *flagsStep) handout(sc *Scenario, st *Step) []string {
	exec := "docker exec " + handoutNode + " "
	var out []string
	if f.Restore {
		out = append(out, `old=$(docker exec "$NODE" crictl ps -q --name kube-apiserver)`,
			exec+"cp "+handoutBackup+" "+handoutManifest)
	} else {
		for name, manifest := range f.Files {
			data, err := readManifest(sc, manifest)
			if err != nil {
				continue
			}
			out = append(out, heredoc("docker exec -i "+handoutNode+" tee "+handoutFiles+"/"+name+" >/dev/null", data)...)
		}
		out = append(out, `old=$(docker exec "$NODE" crictl ps -q --name kube-apiserver)`,
			exec+"test -e "+handoutBackup+" || "+exec+"cp "+handoutManifest+" "+handoutBackup)
		for _, flag := range append(append([]string(nil), f.Remove...), f.Set...) {
			out = append(out, fmt.Sprintf(`%ssed -i '/^    - %s[=]/d' %s`, exec, cluster.FlagName(flag), handoutManifest))
		}
		for _, flag := range f.Set {
			flag = strings.ReplaceAll(flag, cluster.FilesDirPlaceholder, handoutFiles)
			out = append(out, fmt.Sprintf(`%ssed -i 's|^    - kube-apiserver$|&\n    - %s|' %s`, exec, flag, handoutManifest))
		}
	}
	if st.Expect != nil && st.Expect.RolledBack {
		return append(out,
			"# kube-apiserver refuses to start; read why, then put the manifest back:",
			`sleep 20; docker exec "$NODE" sh -c 'crictl logs $(crictl ps -a -q --name kube-apiserver | head -1) 2>&1 | tail -3'`,
			exec+"cp "+handoutBackup+" "+handoutManifest)
	}
	return append(out, `until new=$(docker exec "$NODE" crictl ps -q --name kube-apiserver) && [ -n "$new" ] && [ "$new" != "$old" ] && kubectl get --raw /livez >/dev/null 2>&1; do sleep 1; done`)
}
