package steps

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// The shell variables every command the lab shows is written with; `anonlab
// env` exports them for a running lab, a handout defines them, so each
// command runs verbatim in such a shell (docs/architecture.md, Commands).
const (
	VarAPIServer  = "APISERVER"               // the apiserver's URL
	VarCACert     = "CACERT"                  // the cluster's CA, PEM
	VarKubeconfig = "KUBECONFIG"              // the admin's kubeconfig
	VarManifest   = "KUBE_APISERVER_MANIFEST" // the static-Pod manifest to edit
	VarNode       = "NODE"                    // kind: the control-plane container
	VarManifests  = "MANIFESTS"               // the scenario's manifest files
)

// manifestFile is the shell word for a manifest in $MANIFESTS.
func manifestFile(name string) string {
	return `"$` + VarManifests + "/" + name + `"`
}

// manifestFlags is "-f FILE" for each manifest.
func manifestFlags(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("-f " + manifestFile(n))
	}
	return b.String()
}

// shellCommand is the request as a person types it: curl with the
// cluster's CA (never -k), or kubectl for the admin.
func (q *requestStep) shellCommand() string {
	if q.As == "admin" {
		return "kubectl get --raw " + cluster.ShellQuote(q.Path)
	}
	curl := `curl --cacert "$` + VarCACert + `"`
	if q.Method == "HEAD" {
		curl += " --head"
	}
	if q.Token != "" {
		curl += ` -H "Authorization: Bearer $` + tokenVariable(q.Token) + `"`
	}
	return curl + ` "$` + VarAPIServer + strings.Trim(doubleQuote(q.Path), `"`) + `"`
}

// shellCommand gets the token into the variable later requests use, from
// where (fromSecret: the article's command).
func (t *tokenStep) shellCommand(from string) string {
	if from == fromSecret {
		return fmt.Sprintf("%s=$(kubectl get secret --namespace %[2]s $(kubectl get serviceaccount %[3]s --namespace %[2]s -o jsonpath='{.secrets[0].name}') -o jsonpath='{.data.token}' | base64 -d)",
			tokenVariable(t.SaveAs), t.Namespace, t.ServiceAccount)
	}
	return fmt.Sprintf("%s=$(kubectl create token %s --namespace %s)", tokenVariable(t.SaveAs), t.ServiceAccount, t.Namespace)
}

func (a *applyStep) shellCommand() string { return "kubectl apply " + manifestFlags(a.Manifests) }

func (d *deleteStep) shellCommand() string {
	return "kubectl delete --ignore-not-found " + manifestFlags(d.Manifests)
}

// tokenVariable is the shell variable a saved token is shown as.
func tokenVariable(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// doubleQuote quotes s for the inside of a double-quoted shell word.
func doubleQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// writeManifests writes every manifest the scenario names into dir, as
// $MANIFESTS: the objects of apply and delete steps stamped as this run's
// (so what an attendee applies from there is recorded as the lab's, not
// guessed from its name), the files of flag changes as they are.
func (r *runner) writeManifests(dir string) error {
	return r.eachManifest(func(name string, objects bool) error {
		data, err := readManifest(r.scenario, name)
		if err != nil {
			return err
		}
		if objects {
			objs, err := manifestObjects(r.scenario, []string{name})
			if err != nil {
				return err
			}
			if data, err = r.stampedYAML(objs); err != nil {
				return fmt.Errorf("manifest %s: %w", name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600); err != nil {
			return fmt.Errorf("write %s into $%s: %w", name, VarManifests, err)
		}
		return nil
	})
}

// eachManifest calls fn once for each manifest the scenario names, saying
// whether it holds objects (apply, delete) or is a file for kube-apiserver.
func (r *runner) eachManifest(fn func(name string, objects bool) error) error {
	seen := map[string]bool{}
	for _, st := range slices.Concat(r.scenario.Steps, r.scenario.Cleanup) {
		var names []string
		objects := true
		switch a := st.Action.(type) {
		case *applyStep:
			names = a.Manifests
		case *deleteStep:
			names = a.Manifests
		case *flagsStep:
			names, objects = slices.Sorted(maps.Values(a.Files)), false
		}
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			if err := fn(name, objects); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) stampedYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var docs []string
	for _, obj := range objs {
		r.stamp(obj)
		data, err := sigsyaml.Marshal(obj.Object)
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(data))
	}
	return []byte(strings.Join(docs, "---\n")), nil
}

// recordShell writes the scenario's manifests where $MANIFESTS points and
// records the run's shell variables in its ledger entry, for `anonlab env`.
// The directory is the backend's own when it has one (removed with it),
// else one of the run's, removed when the run ends.
func (r *runner) recordShell(info cluster.Info) error {
	e := r.entry()
	dir := ""
	if e.Dir != "" {
		dir = filepath.Join(e.Dir, "scenario-manifests")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create $%s: %w", VarManifests, err)
		}
	} else {
		d, err := os.MkdirTemp("", "anonlab-manifests-")
		if err != nil {
			return fmt.Errorf("create $%s: %w", VarManifests, err)
		}
		dir, r.manifestsDir = d, d
	}
	if err := r.writeManifests(dir); err != nil {
		return err
	}
	e.Shell = &ledger.Shell{CAFile: info.CAFile, APIServerManifest: info.APIServerManifest, Node: info.Node, Manifests: dir}
	return r.saveEntry()
}

// ShellEnv is the environment a run's shell gets from `anonlab env`, in a
// fixed order: name and value.
func ShellEnv(e *ledger.Entry) [][2]string {
	if e.Shell == nil {
		return nil
	}
	vars := [][2]string{
		{VarKubeconfig, e.Kubeconfig}, {VarAPIServer, e.URL}, {VarCACert, e.Shell.CAFile},
		{VarManifest, e.Shell.APIServerManifest}, {VarNode, e.Shell.Node}, {VarManifests, e.Shell.Manifests},
	}
	return slices.DeleteFunc(vars, func(v [2]string) bool { return v[1] == "" })
}
