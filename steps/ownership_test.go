package steps_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

// TestReadOnlySkipsWhatDepends: on a cluster the lab did not create, a
// skipped write skips the steps after it that expect its state, and a
// request whose token was not obtained; the steps before it run, and the
// run passes.
func TestReadOnlySkipsWhatDepends(t *testing.T) {
	b := newBackend(t, clustertest.NotCreatedByLab())
	rec := &recorder{}
	sum := steps.Run(t.Context(), parse(t, `
name: ro
title: ro
steps:
  - {id: create, title: create, cluster: create}
  - {id: token, title: token, serviceAccountToken: {saveAs: sa-token}}
  - {id: with-token, title: with token, request: {token: sa-token, path: /api}, expect: {status: 200}}
  - {id: before, title: before, request: {as: anonymous, path: /api}, expect: {status: 403}}
  - {id: grant, title: grant, apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}}
  - {id: after, title: after, request: {as: anonymous, path: /api/v1/namespaces}, expect: {status: 200}}
cleanup:
  - {id: revoke, title: revoke, delete: {manifests: [my-cluster-role-binding.yaml, my-cluster-role.yaml]}}
  - {id: destroy, title: destroy, cluster: destroy}
`), b, rec)
	wantOutcomes(t, rec.events, []outcome{
		{"create", false, steps.Passed}, {"token", false, steps.Skipped}, {"with-token", false, steps.Skipped}, {"before", false, steps.Passed},
		{"grant", false, steps.Skipped}, {"after", false, steps.Skipped}, {"revoke", true, steps.Skipped}, {"destroy", true, steps.Passed},
	})
	wantSummary(t, sum, 3, 0, 5)
	for id, why := range map[string]string{
		"token":      "create ServiceAccount default/default, which does not exist",
		"with-token": `no token "sa-token": step "token", which was to get it, was skipped`,
		"after":      `step "grant" was skipped, and this step expects the state it makes`,
	} {
		if f := finishedStep(t, rec.events, id); !strings.Contains(f.Error, why) {
			t.Errorf("step %s skipped with %q, want it to say %q", id, f.Error, why)
		}
	}
	if objs := b.Objects(); len(objs) > 0 {
		t.Errorf("a read-only run wrote %v", objs)
	}
}

// TestOwnershipByRecord: an object of a manifest's name that no lab run
// applied is neither changed by the apply nor deleted by cleanup; the
// lab's own objects are deleted.
func TestOwnershipByRecord(t *testing.T) {
	b := newBackend(t)
	rec := &recorder{}
	sc := parse(t, `
name: own
title: own
steps:
  - {id: create, title: create, cluster: create}
  - {id: role, title: role, apply: {manifests: [my-cluster-role.yaml]}}
cleanup:
  - {id: revoke, title: revoke, delete: {manifests: [my-cluster-role-binding.yaml, my-cluster-role.yaml]}}
`)
	// The user's own binding of the manifest's name, made before the run
	// through the admin's client once the cluster is up.
	rec.onEmit = func(e steps.Event) {
		if f, ok := e.(steps.StepFinished); ok && f.Step == "create" {
			dyn, err := dynamic.NewForConfig(b.AdminConfig())
			if err != nil {
				t.Fatal(err)
			}
			crb := &unstructured.Unstructured{}
			crb.SetAPIVersion("rbac.authorization.k8s.io/v1")
			crb.SetKind("ClusterRoleBinding")
			crb.SetName("my-cluster-role-binding")
			crb.Object["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
			gvr := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
			if _, err := dyn.Resource(gvr).Apply(t.Context(), crb.GetName(), crb, metav1.ApplyOptions{FieldManager: "the-user"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps.Run(t.Context(), sc, b, rec)
	var logs []string
	for _, l := range of[steps.Log](rec.events) {
		logs = append(logs, l.Text)
	}
	all := strings.Join(logs, "\n")
	for _, want := range []string{
		"left alone: ClusterRoleBinding my-cluster-role-binding exists, but no lab run applied it",
		"deleted ClusterRole my-cluster-role",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the log lacks %q:\n%s", want, all)
		}
	}
	if objs := b.Objects(); len(objs) != 1 || objs[0] != "clusterrolebindings/my-cluster-role-binding" {
		t.Errorf("objects left: %v, want only the user's binding", objs)
	}
}

// TestServiceAccountMadeMeanwhile: when the ServiceAccount controller makes
// the default ServiceAccount between the lab's GET and its create (kind,
// right after the cluster came up), the token step uses that one, and
// cleanup leaves it alone: it is not the lab's.
func TestServiceAccountMadeMeanwhile(t *testing.T) {
	b := newBackend(t, clustertest.RacingServiceAccountController())
	rec := &recorder{}
	sum := steps.Run(t.Context(), parse(t, `
name: race
title: race
steps:
  - {id: create, title: create, cluster: create}
  - {id: token, title: token, serviceAccountToken: {saveAs: sa-token}}
  - {id: with-token, title: with token, request: {token: sa-token, path: /api}, expect: {status: 200}}
cleanup:
  - {id: revoke, title: revoke, delete: {manifests: [my-cluster-role.yaml]}}
`), b, rec)
	wantSummary(t, sum, 4, 0, 0)
	if objs := b.Objects(); len(objs) != 1 || objs[0] != "serviceaccounts/default/default" {
		t.Errorf("objects left: %v, want the controller's ServiceAccount", objs)
	}
}
