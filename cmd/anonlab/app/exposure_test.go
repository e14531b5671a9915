package app

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/manifests"
	"github.com/anonlab/anonlab/scenarios"
	"github.com/anonlab/anonlab/steps/cluster"
)

// TestExposureExisting is the must-show for anonymous-exposure, as
// docs/ci-exposure.md runs it: on a kube-apiserver the lab did not start,
// with the account and the command line of that page, the verdict is
// rbac-limited (exit 0); exposed after a ClusterRoleBinding of view to
// system:unauthenticated is added by hand (the binding named, exit 1);
// health-only and then off after that apiserver restarts with an
// AuthenticationConfiguration and with --anonymous-auth=false (exit 0).
// Every object the apiserver lists is the same before and after each run.
func TestExposureExisting(t *testing.T) {
	foreign, state := foreignCluster(t)
	ctx := context.Background()
	cs := clientset(t, foreign)
	account, workflow := ciExposureDoc(t)

	for _, obj := range account {
		createByHand(t, foreign.AdminConfig(), obj)
	}
	const sa = "system:serviceaccount:default:anonlab-exposure-check"
	review, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: sa, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "namespaces", Name: "kube-system"},
	}}, metav1.CreateOptions{})
	if err != nil || review.Status.Allowed {
		t.Fatalf("the page's account may get the kube-system namespace (%v): the test would not show that it need not", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "anonlab-exposure-check", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := writeKubeconfig(t, filepath.Join(dir, "kubeconfig"), foreign.Info(), tr.Status.Token, false)

	// runPage runs the page's command line, its JUnit on stdout, and
	// returns that and the same run's JSON lines (--report); nothing of
	// the cluster may change.
	runPage := func(t *testing.T, wantCode int, args ...string) (junitXML string, events []exposureEvent) {
		t.Helper()
		if args == nil {
			args = workflow
		}
		jsonl := filepath.Join(t.TempDir(), "run.jsonl")
		args = slices.Concat(args, []string{"--report", jsonl, "--lang", "en"})
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "$RUNNER_TEMP/kubeconfig", kubeconfig)
		}
		before := everything(t, foreign.AdminConfig())
		entries, _ := filepath.Glob(filepath.Join(state, "*.json")) // the foreign cluster's own
		code, out, errOut := run(t, args...)
		if code != wantCode {
			t.Errorf("anonlab %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		if d := diff(before, everything(t, foreign.AdminConfig())); len(d) > 0 {
			t.Errorf("the run changed the cluster: %v", d)
		}
		if left, _ := filepath.Glob(filepath.Join(state, "*.json")); !slices.Equal(left, entries) {
			t.Errorf("the run left ledger entries: %v (before it: %v)", left, entries)
		}
		data, err := os.ReadFile(jsonl)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var e exposureEvent
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			events = append(events, e)
		}
		return out, events
	}

	t.Run("refuses a kubeconfig that skips TLS verification", func(t *testing.T) {
		insecure := writeKubeconfig(t, filepath.Join(dir, "insecure"), foreign.Info(), tr.Status.Token, true)
		code, out, errOut := run(t, "run", "anonymous-exposure", "--backend", "existing", "--kubeconfig", insecure, "--lang", "en")
		if code == ExitOK || !strings.Contains(out+errOut, "insecure-skip-tls-verify") {
			t.Errorf("exit %d, want a refusal naming insecure-skip-tls-verify\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("on, RBAC-limited", func(t *testing.T) {
		out, events := runPage(t, ExitOK)
		wantStatuses(t, events, map[string]int{"/api": 403, "/apis": 403, "/version": 200, "/healthz": 200, "/livez": 200, "/readyz": 200,
			"/.well-known/openid-configuration": 403, "/openid/v1/jwks": 403, "/api/v1/namespaces": 403})
		wantVerdict(t, events, "rbac-limited: anonymous authentication is on (/api 403)", true)
		c := exposureCase(t, out)
		if c.Failure != nil || !strings.Contains(c.SystemOut, "✓ anonymous exposure: rbac-limited: ") {
			t.Errorf("the JUnit testcase %q does not carry the verdict: %+v", c.Name, c)
		}
		wantLog(t, events, `ClusterRoleBinding "system:public-info-viewer" binds ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`)
		wantLog(t, events, "allowed and in the allow list: get /healthz, get /livez, get /readyz, get /version, get /version/")
	})

	t.Run("accept off and health-only: rbac-limited fails", func(t *testing.T) {
		data, err := fs.ReadFile(scenarios.FS, "anonymous-exposure.yaml")
		if err != nil {
			t.Fatal(err)
		}
		strict := strings.Replace(string(data), "anonymousExposure: {}", "anonymousExposure: {accept: [off, health-only]}", 1)
		if strict == string(data) {
			t.Fatal("the scenario has no `anonymousExposure: {}` to make strict")
		}
		file := filepath.Join(t.TempDir(), "strict.yaml")
		if err := os.WriteFile(file, []byte(strict), 0o600); err != nil {
			t.Fatal(err)
		}
		_, events := runPage(t, ExitFailed, "run", "--file", file, "--backend", "existing", "--kubeconfig", "$RUNNER_TEMP/kubeconfig", "--output", "junit")
		wantVerdict(t, events, "rbac-limited: ", false)
	})

	// view is an aggregated ClusterRole whose rules kube-controller-manager
	// fills in; the local backend runs none, so do its part by hand.
	aggregated, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "rbac.authorization.k8s.io/aggregate-to-view=true"})
	if err != nil {
		t.Fatal(err)
	}
	view, err := cs.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range aggregated.Items {
		view.Rules = append(view.Rules, r.Rules...)
	}
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, view, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "anon-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const granted = `ClusterRoleBinding "anon-view" of ClusterRole "view" to Group "system:unauthenticated"`

	t.Run("exposed: view bound to system:unauthenticated by hand", func(t *testing.T) {
		out, events := runPage(t, ExitFailed)
		wantStatuses(t, events, map[string]int{"/api": 403, "/api/v1/namespaces": 200})
		wantVerdict(t, events, "exposed: anonymous users may ", false)
		wantVerdict(t, events, granted, false)
		wantLog(t, events, `ClusterRoleBinding "anon-view" binds ClusterRole "view" to Group "system:unauthenticated"`)
		c := exposureCase(t, out)
		if c.Failure == nil || !strings.Contains(c.Failure.Text, granted) || !strings.Contains(c.Failure.Text, "anonymous users may get ") {
			t.Errorf("the JUnit failure does not name what is exposed and the binding: %+v", c.Failure)
		}
		wantLog(t, events, "list namespaces")
	})

	t.Run("health-only: an AuthenticationConfiguration", func(t *testing.T) {
		authn, err := fs.ReadFile(manifests.FS, "authn-health-only.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := foreign.ReconfigureAPIServer(ctx, cluster.APIServerChange{
			Set: []string{"--authentication-config=" + cluster.FilesDirPlaceholder + "/authn.yaml"}, Files: map[string][]byte{"authn.yaml": authn},
		}); err != nil {
			t.Fatal(err)
		}
		_, events := runPage(t, ExitOK)
		wantStatuses(t, events, map[string]int{"/api": 401, "/version": 401, "/api/v1/namespaces": 401, "/healthz": 200, "/livez": 200, "/readyz": 200})
		wantVerdict(t, events, "health-only: anonymous requests reach only the health paths", true)
		wantLog(t, events, "latent (RBAC allows it, but anonymous requests do not reach it now): ")
	})

	t.Run("off: restarted with --anonymous-auth=false", func(t *testing.T) {
		if err := foreign.RestoreAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if err := foreign.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}); err != nil {
			t.Fatal(err)
		}
		_, events := runPage(t, ExitOK)
		probes := 0
		for _, e := range events {
			if e.Event == "http" {
				probes++
				if e.Status != 401 {
					t.Errorf("%s answered %d, want 401", e.Path, e.Status)
				}
			}
		}
		if probes < 10 {
			t.Errorf("%d anonymous requests, want 10", probes)
		}
		wantVerdict(t, events, "off: anonymous authentication is off; every anonymous request was answered 401", true)
		wantLog(t, events, granted)
	})
}

type exposureEvent struct {
	Event, Step, Path, Name, Got, Text string
	Status                             int
	OK                                 bool
}

func wantStatuses(t *testing.T, events []exposureEvent, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, e := range events {
		if e.Event == "http" && e.Step == "exposure" {
			got[e.Path] = e.Status
		}
	}
	for path, status := range want {
		if got[path] != status {
			t.Errorf("anonymous GET %s answered %d, want %d (all: %v)", path, got[path], status, got)
		}
	}
}

func wantVerdict(t *testing.T, events []exposureEvent, part string, ok bool) {
	t.Helper()
	for _, e := range events {
		if e.Event == "check" && e.Name == "anonymous exposure" {
			if !strings.Contains(e.Got, part) || e.OK != ok {
				t.Errorf("verdict %q (ok %v), want it to contain %q (ok %v)", e.Got, e.OK, part, ok)
			}
			return
		}
	}
	t.Errorf("no verdict among the events")
}

func wantLog(t *testing.T, events []exposureEvent, part string) {
	t.Helper()
	if !slices.ContainsFunc(events, func(e exposureEvent) bool { return e.Event == "log" && strings.Contains(e.Text, part) }) {
		t.Errorf("no log line contains %q", part)
	}
}

type junitCase struct {
	Name    string `xml:"name,attr"`
	Failure *struct {
		Text string `xml:",chardata"`
	} `xml:"failure"`
	SystemOut string `xml:"system-out"`
}

// exposureCase is the exposure step's testcase in a JUnit report.
func exposureCase(t *testing.T, report string) junitCase {
	t.Helper()
	var suites struct {
		Suites []struct {
			Cases []junitCase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(report), &suites); err != nil {
		t.Fatalf("the JUnit report does not parse: %v\n%s", err, report)
	}
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if strings.HasPrefix(c.Name, "exposure ") {
				return c
			}
		}
	}
	t.Fatalf("no exposure testcase in\n%s", report)
	return junitCase{}
}

// ciExposureDoc reads docs/ci-exposure.md: the objects of its account
// manifest, and its workflow's anonlab command line (without the shell's
// redirection, quotes removed).
func ciExposureDoc(t *testing.T) ([]*unstructured.Unstructured, []string) {
	t.Helper()
	data, err := os.ReadFile("../../../docs/ci-exposure.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) != 2 {
		t.Fatalf("docs/ci-exposure.md has %d yaml blocks, want 2 (the account, the workflow)", len(blocks))
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(blocks[0][1], "\n---\n") {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct{ Run string }
		}
	}
	if err := yaml.Unmarshal([]byte(blocks[1][1]), &wf); err != nil {
		t.Fatalf("the workflow does not parse: %v", err)
	}
	for _, job := range wf.Jobs {
		for _, st := range job.Steps {
			if cmd, ok := strings.CutPrefix(st.Run, "anonlab "); ok {
				cmd, _, _ = strings.Cut(cmd, " > ")
				return objs, strings.Fields(strings.ReplaceAll(cmd, `"`, ""))
			}
		}
	}
	t.Fatal("the workflow has no step that runs anonlab")
	return nil, nil
}

// createByHand creates obj as the cluster's admin would with kubectl.
func createByHand(t *testing.T, cfg *rest.Config, obj *unstructured.Unstructured) {
	t.Helper()
	resources := map[string]string{"ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}
	gvr := obj.GroupVersionKind().GroupVersion().WithResource(resources[obj.GetKind()])
	var ri dynamic.ResourceInterface = dynamic.NewForConfigOrDie(cfg).Resource(gvr)
	if obj.GetNamespace() != "" {
		ri = dynamic.NewForConfigOrDie(cfg).Resource(gvr).Namespace(obj.GetNamespace())
	}
	if _, err := ri.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// writeKubeconfig writes a kubeconfig for the cluster of info with a
// bearer token, verifying TLS against the cluster's CA unless insecure.
func writeKubeconfig(t *testing.T, path string, info cluster.Info, token string, insecure bool) string {
	t.Helper()
	c := &clientcmdapi.Cluster{Server: info.URL, CertificateAuthorityData: info.CAData}
	if insecure {
		c = &clientcmdapi.Cluster{Server: info.URL, InsecureSkipTLSVerify: true}
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"cluster": c},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"ci": {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{"ci": {Cluster: "cluster", AuthInfo: "ci"}},
		CurrentContext: "ci",
	}
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// everything is every object the apiserver lists, by resource, namespace
// and name, with its resourceVersion: any write changes it. Leases and
// Events are left out: kube-apiserver writes them itself.
func everything(t *testing.T, cfg *rest.Config) map[string]string {
	t.Helper()
	lists, err := discovery.NewDiscoveryClientForConfigOrDie(cfg).ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	out := map[string]string{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || r.Name == "leases" || r.Name == "events" {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatalf("list %s: %v", r.Name, err)
			}
			for _, it := range items.Items {
				out[r.Name+"."+gv.Group+" "+it.GetNamespace()+"/"+it.GetName()] = it.GetResourceVersion()
			}
		}
	}
	return out
}
