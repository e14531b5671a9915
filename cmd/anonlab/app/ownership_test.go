package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// foreignCluster starts a kube-apiserver the run under test did not create
// (its own ledger entry lives in a state directory the run never reads),
// holding the user's own ClusterRole my-cluster-role with other rules than
// the article's. It returns the backend and ANONLAB_STATE_DIR for the run.
func foreignCluster(t *testing.T) (*local.Backend, string) {
	t.Helper()
	needCluster(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	foreign := local.New()
	ctx := context.Background()
	if err := foreign.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = foreign.Destroy(ctx) })
	cs := clientset(t, foreign)
	_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "my-cluster-role"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runState := t.TempDir()
	t.Setenv("ANONLAB_STATE_DIR", runState)
	return foreign, runState
}

func clientset(t *testing.T, b cluster.Backend) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(b.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// snapshot is every RBAC object, ServiceAccount and namespace of the
// cluster by kind/namespace/name, with its resourceVersion: any write
// changes it.
func snapshot(t *testing.T, cs *kubernetes.Clientset) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(kind string, items []metav1.Object) {
		for _, o := range items {
			out[kind+" "+o.GetNamespace()+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	opts := metav1.ListOptions{}
	crs, err1 := cs.RbacV1().ClusterRoles().List(ctx, opts)
	crbs, err2 := cs.RbacV1().ClusterRoleBindings().List(ctx, opts)
	rs, err3 := cs.RbacV1().Roles("").List(ctx, opts)
	rbs, err4 := cs.RbacV1().RoleBindings("").List(ctx, opts)
	sas, err5 := cs.CoreV1().ServiceAccounts("").List(ctx, opts)
	nss, err6 := cs.CoreV1().Namespaces().List(ctx, opts)
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			t.Fatal(err)
		}
	}
	add("ClusterRole", metas(crs.Items))
	add("ClusterRoleBinding", metas(crbs.Items))
	add("Role", metas(rs.Items))
	add("RoleBinding", metas(rbs.Items))
	add("ServiceAccount", metas(sas.Items))
	add("Namespace", metas(nss.Items))
	return out
}

func metas[T any, P interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	var out []metav1.Object
	for i := range items {
		out = append(out, P(&items[i]))
	}
	return out
}

func diff(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "deleted "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "created "+k)
		}
	}
	slices.Sort(d)
	return d
}

func anonymousBindings(t *testing.T, cs *kubernetes.Clientset) []string {
	t.Helper()
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, crb := range crbs.Items {
		for _, s := range crb.Subjects {
			if s.Name == "system:anonymous" || s.Name == "system:unauthenticated" && crb.Name != "system:public-info-viewer" {
				out = append(out, crb.Name)
			}
		}
	}
	return out
}

// TestExistingClusterLeftAsItWas runs every embedded scenario on a
// kube-apiserver the lab did not start, without the opt-in: nothing of the
// cluster changes (the user's own my-cluster-role included), the run exits
// 0, and the steps it could not run say why (anonymous-exposure has none).
func TestExistingClusterLeftAsItWas(t *testing.T) {
	foreign, _ := foreignCluster(t)
	cs := clientset(t, foreign)
	scs, err := steps.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			before := snapshot(t, cs)
			code, out, errOut := run(t, "run", sc.Name, "--backend", "existing", "--kubeconfig", foreign.Info().Kubeconfig, "--lang", "en", "--output", "json")
			if code != ExitOK {
				t.Errorf("exit %d, want 0\n%s\n%s", code, out, errOut)
			}
			if d := diff(before, snapshot(t, cs)); len(d) > 0 {
				t.Errorf("the run changed the cluster: %v", d)
			}
			skipped := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var e struct{ Event, Result, Error string }
				if json.Unmarshal([]byte(line), &e) == nil && e.Event == "finished" && e.Result == steps.Skipped {
					skipped++
					if e.Error == "" {
						t.Errorf("a skipped step does not say why: %s", line)
					}
				}
			}
			// The exposure check writes nothing, so it skips nothing; every
			// other scenario writes, and skips its writes here.
			readOnly := sc.Name == "anonymous-exposure"
			if skippedAsReadOnly := skipped > 0 && strings.Contains(out, "read-only: the lab did not create this cluster"); skippedAsReadOnly == readOnly {
				t.Errorf("steps skipped as read-only: %v, want %v:\n%s", skippedAsReadOnly, !readOnly, out)
			}
			if left, _ := filepath.Glob(filepath.Join(os.Getenv("ANONLAB_STATE_DIR"), "*.json")); len(left) > 0 {
				t.Errorf("the run left ledger entries: %v", left)
			}
		})
	}
}

// TestStaleEntryIsNotIdentity: a ledger entry with the foreign cluster's
// URL (same port) but another CA does not make it a lab cluster; an entry
// with its true identity does (the positive control).
func TestStaleEntryIsNotIdentity(t *testing.T) {
	foreign, _ := foreignCluster(t)
	id, err := cluster.ReadIdentity(context.Background(), foreign.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ca     string
		labRun bool
	}{
		{"same URL, another CA", strings.Repeat("0", 64), false},
		{"its CA and kube-system UID", id.CAFingerprint, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &ledger.Entry{ID: "local-1-1", Owner: 1, Backend: "local", URL: foreign.Info().URL, Created: true, Kept: true,
				CAFingerprint: tc.ca, KubeSystemUID: id.KubeSystemUID}
			if err := e.Save(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Delete() })
			code, out, errOut := run(t, "run", "--file", "testdata/optin/grant.yaml", "--backend", "existing", "--kubeconfig", foreign.Info().Kubeconfig, "--lang", "en", "--output", "json")
			granted := strings.Contains(out, `"text":"applied ClusterRoleBinding anonlab-test-reader-binding"`)
			if granted != tc.labRun || code != ExitOK {
				t.Errorf("grant applied = %v, want %v; exit %d, want 0\n%s\n%s", granted, tc.labRun, code, out, errOut)
			}
			if b := anonymousBindings(t, clientset(t, foreign)); len(b) > 0 {
				t.Errorf("bindings to anonymous left: %v", b)
			}
		})
	}
}

// TestOptInKilledThenCleanup: with the opt-in on a cluster the lab did not
// create, a run killed (SIGKILL) while its grant stands leaves a record;
// anonlab cleanup revokes exactly what it applied, and the user's own
// objects are untouched.
func TestOptInKilledThenCleanup(t *testing.T) {
	foreign, state := foreignCluster(t)
	cs := clientset(t, foreign)
	before := snapshot(t, cs)
	cmd, _, _ := startUntil(t, state, []string{"run", "--file", "testdata/optin/grant-then-wait.yaml", "--backend", "existing",
		"--kubeconfig", foreign.Info().Kubeconfig, "--i-understand-this-opens-the-cluster", "--output", "json"},
		func(e map[string]any) bool { return e["event"] == "step" && e["step"] == "wait" })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if b := anonymousBindings(t, cs); !slices.Equal(b, []string{"anonlab-test-reader-binding"}) {
		t.Fatalf("after the kill, bindings to anonymous = %v, want the run's grant: the test proves nothing", b)
	}
	code, out, errOut := run(t, "status")
	if code != ExitOK || !strings.Contains(out, "left behind") || !strings.Contains(out, "ClusterRoleBinding anonlab-test-reader-binding") {
		t.Errorf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, "cleanup")
	if code != ExitOK || !strings.Contains(out, "1 removed") {
		t.Errorf("cleanup: exit %d\n%s\n%s", code, out, errOut)
	}
	if b := anonymousBindings(t, cs); len(b) > 0 {
		t.Errorf("bindings to anonymous left after cleanup: %v", b)
	}
	if d := diff(before, snapshot(t, cs)); len(d) > 0 {
		t.Errorf("cleanup did not put the cluster back as it was: %v", d)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "*.json")); len(left) > 0 {
		t.Errorf("ledger entries left: %v", left)
	}
}

// TestApplyRefusesForeignObject: with the opt-in, the article's grant meets
// the user's own my-cluster-role: the lab refuses to change it, and its
// cleanup deletes nothing of the user's.
func TestApplyRefusesForeignObject(t *testing.T) {
	foreign, _ := foreignCluster(t)
	cs := clientset(t, foreign)
	before := snapshot(t, cs)
	code, out, errOut := run(t, "run", "anonymous-auth", "--backend", "existing", "--kubeconfig", foreign.Info().Kubeconfig,
		"--i-understand-this-opens-the-cluster", "--lang", "en")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1: the grant cannot be applied\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"refusing to apply ClusterRole my-cluster-role", "left alone: ClusterRole my-cluster-role exists, but no lab run applied it"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	after := snapshot(t, cs)
	// The opt-in run may create (and then delete) the default
	// ServiceAccount; nothing of the user's changes.
	if d := diff(before, after); len(d) > 0 {
		t.Errorf("the cluster changed: %v", d)
	}
	role, err := cs.RbacV1().ClusterRoles().Get(context.Background(), "my-cluster-role", metav1.GetOptions{})
	if err != nil || fmt.Sprint(role.Rules[0].Resources) != "[configmaps]" {
		t.Errorf("the user's my-cluster-role: %v %v", role, err)
	}
}

// --keep keeps a cluster the lab would delete; on an existing cluster,
// which the lab never deletes, the lab's own copy of its CA still goes.
func TestExistingKeepLeavesNoFiles(t *testing.T) {
	foreign, _ := foreignCluster(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, errOut := run(t, "run", "anonymous-auth", "--backend", "existing", "--kubeconfig", foreign.Info().Kubeconfig, "--keep", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "anonlab-*")); len(left) > 0 {
		t.Errorf("the run left %v", left)
	}
}
