package steps

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/anonlab/anonlab/steps/cluster/kube"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// manifest decodes YAML documents as the apply step does.
func manifest(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := manifestObjects(&Scenario{dir: dir}, []string{"m.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

var (
	anonymous       = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: anonymousUser}
	unauthenticated = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: unauthenticatedGroup}
	authenticated   = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}
	alice           = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}
	publicInfo      = rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}}
)

func clusterRole(name string, rules ...rbacv1.PolicyRule) rbacv1.ClusterRole {
	return rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func clusterRoleBinding(name, role string, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
}

// guardState is a cluster with kube-apiserver's public-info-viewer grant,
// an aggregated ClusterRole open to anonymous users, a Role open to them,
// bindings whose roles do not exist yet, and a grant to alice.
func guardState() *rbacState {
	aggregated := clusterRole("open-view", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}})
	aggregated.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
		{MatchLabels: map[string]string{"anonlab.test/open-view": "true"}},
	}}
	return &rbacState{
		ClusterRoles: []rbacv1.ClusterRole{
			clusterRole("system:public-info-viewer", publicInfo),
			aggregated,
			clusterRole("alice-role", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}),
		},
		Roles: []rbacv1.Role{{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "reader"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}},
		ClusterRoleBindings: []rbacv1.ClusterRoleBinding{
			clusterRoleBinding("system:public-info-viewer", "system:public-info-viewer", authenticated, unauthenticated),
			clusterRoleBinding("open-view", "open-view", anonymous),
			clusterRoleBinding("dangling", "ghost", anonymous),
			clusterRoleBinding("alice", "alice-role", alice),
		},
		RoleBindings: []rbacv1.RoleBinding{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "reader"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
				Subjects: []rbacv1.Subject{unauthenticated}},
			// Names a Role "reader" of its own namespace, not team's.
			{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "reader"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
				Subjects: []rbacv1.Subject{anonymous}},
		},
	}
}

const publicInfoYAML = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:public-info-viewer
rules:
- verbs: [get]
  nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/]
`

func TestAnonymousOpenings(t *testing.T) {
	cases := []struct {
		name string
		docs []string
		want []string
	}{
		{"a ClusterRoleBinding to system:anonymous", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}
- {kind: User, apiGroup: rbac.authorization.k8s.io, name: system:anonymous}
- {kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:unauthenticated}`},
			[]string{`ClusterRoleBinding "b" binds ClusterRole "view" to User "system:anonymous" and Group "system:unauthenticated"`}},
		{"a RoleBinding without a namespace lands in default", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:unauthenticated}]`},
			[]string{`RoleBinding "rb" in namespace "default" binds Role "r" to Group "system:unauthenticated"`}},
		{"the name counts whatever the subject kind", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:anonymous}]`},
			[]string{`ClusterRoleBinding "b" binds ClusterRole "view" to Group "system:anonymous"`}},
		{"system:public-info-viewer gains get pods", []string{publicInfoYAML + `- verbs: [get]
  apiGroups: [""]
  resources: [pods]`},
			[]string{`ClusterRole "system:public-info-viewer" gains rules (get pods) and is bound to Group "system:unauthenticated" by ClusterRoleBinding "system:public-info-viewer"`}},
		{"a Role bound in its namespace gains rules", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: team}
rules: [{verbs: [get, list], apiGroups: [""], resources: [secrets]}]`},
			[]string{`Role "reader" in namespace "team" gains rules (list secrets) and is bound to Group "system:unauthenticated" by RoleBinding "reader" in namespace "team"`}},
		{"a new ClusterRole an existing binding names", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ghost}
rules: [{verbs: [get, list, watch, create, update, patch, delete], apiGroups: [""], resources: [nodes]}]`},
			[]string{`ClusterRole "ghost" gains rules (get nodes, list nodes, watch nodes, create nodes, update nodes, patch nodes and 1 more) and is bound to User "system:anonymous" by ClusterRoleBinding "dangling"`}},
		{"a ClusterRole aggregated into an open one", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: extra
  labels: {anonlab.test/open-view: "true"}
rules: [{verbs: [get], apiGroups: [""], resources: [configmaps, secrets]}]`},
			[]string{`ClusterRole "extra" adds rules (get secrets) to ClusterRole "open-view", whose aggregationRule selects its labels, and ClusterRole "open-view" is bound to User "system:anonymous" by ClusterRoleBinding "open-view"`}},
		{"an open ClusterRole gains an aggregationRule", []string{publicInfoYAML + `aggregationRule:
  clusterRoleSelectors: [{matchLabels: {team: ops}}]`},
			[]string{`ClusterRole "system:public-info-viewer" gains an aggregationRule (selects ClusterRoles labelled team=ops: their rules become its rules) and is bound to Group "system:unauthenticated" by ClusterRoleBinding "system:public-info-viewer"`}},

		{"a binding to a normal user", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}]`}, nil},
		{"an unchanged role bound to anonymous users", []string{publicInfoYAML}, nil},
		{"an aggregated role bound to anonymous users, unchanged", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: open-view}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {anonlab.test/open-view: "true"}}]
rules: [{verbs: [get], apiGroups: [""], resources: [configmaps]}]`}, nil},
		{"a role with fewer rules", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: system:public-info-viewer}
rules: [{verbs: [get], nonResourceURLs: [/version]}]`}, nil},
		{"a ClusterRole whose labels match nothing", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: extra
  labels: {anonlab.test/open-view: "false"}
rules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"]}]`}, nil},
		{"a role that gains rules only alice holds", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: alice-role}
rules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"]}]`}, nil},
		{"a role gains rules while its binding stops naming anonymous users", []string{publicInfoYAML + `- {verbs: [get], apiGroups: [""], resources: [pods]}`,
			`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: system:public-info-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:public-info-viewer}
subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:authenticated}]`}, nil},
		{"objects of other kinds", []string{`apiVersion: v1
kind: ConfigMap
metadata: {name: system:anonymous}
data: {subjects: system:anonymous}`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := anonymousOpenings(guardState(), manifest(t, tc.docs...))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

// TestAnonymousOpeningsArticle reads the article's manifests: each binding
// is told once, and the new role they bind is not told apart.
func TestAnonymousOpeningsArticle(t *testing.T) {
	toUser := `ClusterRoleBinding "my-cluster-role-binding" binds ClusterRole "my-cluster-role" to User "system:anonymous"`
	toGroup := `ClusterRoleBinding "my-cluster-role-binding-unauthenticated" binds ClusterRole "my-cluster-role" to Group "system:unauthenticated"`
	cases := []struct {
		manifests []string
		want      []string
	}{
		{[]string{"my-cluster-role.yaml", "my-cluster-role-binding.yaml"}, []string{toUser}},
		{[]string{"my-cluster-role.yaml", "my-cluster-role-binding.yaml", "my-cluster-role-binding-unauthenticated.yaml"}, []string{toUser, toGroup}},
	}
	for _, tc := range cases {
		objs, err := manifestObjects(&Scenario{}, tc.manifests)
		if err != nil {
			t.Fatal(err)
		}
		if got := anonymousOpenings(guardState(), objs); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", tc.manifests, strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
		}
	}
}

// TestAnonymousOpeningsUnreadable: an RBAC object that does not decode is
// an opening, since the guard cannot tell what it grants.
func TestAnonymousOpeningsUnreadable(t *testing.T) {
	objs := manifest(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: odd}
rules: not a list`)
	got := anonymousOpenings(guardState(), objs)
	if len(got) != 1 || !strings.HasPrefix(got[0], `read ClusterRole "odd": `) || !strings.HasSuffix(got[0], "the guard cannot tell what it grants") {
		t.Errorf("got %q, want one sentence saying ClusterRole \"odd\" cannot be read", got)
	}
}

func TestAccessAttrString(t *testing.T) {
	cases := []struct {
		attr accessAttr
		want string
	}{
		{accessAttr{Verb: "list", Resource: "namespaces"}, "list namespaces"},
		{accessAttr{Verb: "get", Resource: "pods", Namespace: "kube-system"}, "get pods in kube-system"},
		{accessAttr{Verb: "get", Path: "/api"}, "get /api"},
		{accessAttr{Verb: "update", Group: "apps", Resource: "deployments/scale", Namespace: "default", Name: "web"}, `update deployments.apps/scale "web" in default`},
		{accessAttr{Verb: "*", Group: "*", Resource: "*"}, "* *.*"},
	}
	for _, tc := range cases {
		if got := tc.attr.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.attr, got, tc.want)
		}
	}
}

func TestAccessAttrs(t *testing.T) {
	cases := []struct {
		name string
		docs []string
		want []string
	}{
		{"the article's ClusterRole", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: my-cluster-role}
rules:
- {verbs: [get, list], apiGroups: [""], resources: [namespaces]}
- {verbs: [get], nonResourceURLs: [/api, /api/*]}`},
			[]string{"get namespaces", "list namespaces", "get /api", "get /api/*"}},
		{"a Role in its namespace, with names and subresources", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: team}
rules: [{verbs: [get], apiGroups: [""], resources: [pods/log], resourceNames: [web]}]`},
			[]string{`get pods/log "web" in team`}},
		{"a ClusterRole also in the namespace a RoleBinding grants it", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cr}
rules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"]}]`, `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: system:anonymous}]`},
			[]string{"* *.*", "* *.* in team"}},
		{"a binding to a role the manifest does not hold", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: system:anonymous}]`}, nil},
		{"repeats once", []string{`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: a}
rules: [{verbs: [get], apiGroups: [""], resources: [pods]}, {verbs: [get], apiGroups: [""], resources: [pods]}]`, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: b}
rules: [{verbs: [get], apiGroups: [""], resources: [pods]}]`},
			[]string{"get pods"}},
		{"other kinds", []string{`apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {rules: "get pods"}`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, a := range accessAttrs(manifest(t, tc.docs...)) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAccessAttrsCapped(t *testing.T) {
	var resources []string
	for i := range maxAccessAttrs + 8 {
		resources = append(resources, "r"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	got := accessAttrs(manifest(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: many}
rules: [{verbs: [get], apiGroups: [""], resources: [`+strings.Join(resources, ", ")+`]}]`))
	if len(got) != maxAccessAttrs || got[0].Resource != "raa" {
		t.Errorf("got %d attributes from %s, want the first %d of %d", len(got), got[0], maxAccessAttrs, len(resources))
	}
}

// TestGuardAgainstAPIServer reads a real kube-apiserver's RBAC and asks it
// what anonymous users may do.
func TestGuardAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd and kube-apiserver: run without -short (make test does)")
	}
	ctx := context.Background()
	b := local.New()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Destroy(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("destroy the local cluster: %v", err)
		}
	})
	cs, err := kube.New(b.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}

	state, err := readRBAC(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(state.ClusterRoles, func(r rbacv1.ClusterRole) bool { return r.Name == "system:public-info-viewer" })
	if i < 0 {
		t.Fatalf("readRBAC found no ClusterRole system:public-info-viewer among %d", len(state.ClusterRoles))
	}
	if !slices.ContainsFunc(state.ClusterRoleBindings, func(b rbacv1.ClusterRoleBinding) bool {
		return b.Name == "system:public-info-viewer" && slices.Contains(b.Subjects, unauthenticated)
	}) {
		t.Errorf("readRBAC found no ClusterRoleBinding system:public-info-viewer to %s", unauthenticatedGroup)
	}

	grown := state.ClusterRoles[i].DeepCopy()
	grown.Rules = append(grown.Rules, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}})
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(grown)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: u}
	obj.SetAPIVersion(rbacv1.SchemeGroupVersion.String())
	obj.SetKind("ClusterRole")
	got := anonymousOpenings(state, []*unstructured.Unstructured{obj})
	want := `ClusterRole "system:public-info-viewer" gains rules (get pods) and is bound to Group "system:unauthenticated" by ClusterRoleBinding "system:public-info-viewer"`
	if !slices.Equal(got, []string{want}) {
		t.Errorf("openings: got %q, want [%q]", got, want)
	}

	results, err := anonymousAccess(ctx, cs, []accessAttr{{Verb: "get", Path: "/version"}, {Verb: "list", Resource: "namespaces"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d answers for 2 questions: %+v", len(results), results)
	}
	if r := results[0]; !r.Allowed || !strings.Contains(r.Reason, "system:public-info-viewer") {
		t.Errorf("%s: allowed=%v (%q), want allowed by system:public-info-viewer", r.Attr, r.Allowed, r.Reason)
	}
	if r := results[1]; r.Allowed {
		t.Errorf("%s: allowed (%q), want denied", r.Attr, r.Reason)
	}
}
