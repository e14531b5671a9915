package steps

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// probesAnswering answers every probe with status, but those in set.
func probesAnswering(status int, set map[string]int) []probeResult {
	var out []probeResult
	for _, p := range exposureProbes {
		s, ok := set[p.path]
		if !ok {
			s = status
		}
		out = append(out, probeResult{path: p.path, attr: p.attr, status: s})
	}
	return out
}

const (
	publicInfoReason = `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`
	anonViewReason   = `RBAC: allowed by ClusterRoleBinding "anon-view" of ClusterRole "view" to Group "system:unauthenticated"`
)

// defaults is what reviews allow anonymous users on a fresh cluster.
func defaults() []accessResult {
	var out []accessResult
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version", "/version/"} {
		out = append(out, accessResult{Attr: accessAttr{Verb: "get", Path: p}, Allowed: true, Reason: publicInfoReason})
	}
	return out
}

func viewGrant() []accessResult {
	return []accessResult{
		{Attr: accessAttr{Verb: "get", Resource: "pods"}, Allowed: true, Reason: anonViewReason},
		{Attr: accessAttr{Verb: "list", Resource: "namespaces"}, Allowed: true, Reason: anonViewReason},
	}
}

func TestJudgeExposure(t *testing.T) {
	healthOK := map[string]int{"/healthz": 200, "/livez": 200, "/readyz": 200}
	clusterInfo := accessResult{Attr: accessAttr{Verb: "get", Resource: "configmaps", Namespace: "kube-public", Name: "cluster-info"}, Allowed: true,
		Reason: `RBAC: allowed by RoleBinding "kubeadm:bootstrap-signer-clusterinfo/kube-public" of Role "kubeadm:bootstrap-signer-clusterinfo" to User "system:anonymous"`}
	onlyVersion := []allowRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/version"}}}
	cases := []struct {
		Name         string
		probes       []probeResult
		allowed      []accessResult
		allow        []allowRule
		verdict      string
		exposed      []string // their attributes
		latent       int
		lineMentions []string
	}{
		{Name: "off: every request 401, a grant only latent", probes: probesAnswering(401, nil), allowed: slices.Concat(defaults(), viewGrant()),
			verdict: verdictOff, latent: 2, lineMentions: []string{"off", "401"}},
		{Name: "health paths only", probes: probesAnswering(401, healthOK), allowed: slices.Concat(defaults(), viewGrant()),
			verdict: verdictHealthOnly, latent: 2, lineMentions: []string{"/healthz 200", "/api 401", "KEP-4633"}},
		{Name: "health paths only, but the allow list lacks them", probes: probesAnswering(401, healthOK), allowed: defaults(), allow: onlyVersion,
			verdict: verdictExposed, exposed: []string{"get /healthz", "get /livez", "get /readyz"}, latent: 1},
		{Name: "on, the defaults only", probes: probesAnswering(403, map[string]int{"/version": 200, "/healthz": 200, "/livez": 200, "/readyz": 200}),
			allowed: defaults(), verdict: verdictRBACLimited, lineMentions: []string{"/api 403"}},
		{Name: "on, kubeadm's cluster-info read is a default", probes: probesAnswering(403, map[string]int{"/api/v1/namespaces/kube-public/configmaps/cluster-info": 200}),
			allowed: append(defaults(), clusterInfo), verdict: verdictRBACLimited},
		{Name: "on, view bound to system:unauthenticated", probes: probesAnswering(403, map[string]int{"/api/v1/namespaces": 200}),
			allowed: slices.Concat(defaults(), viewGrant()), verdict: verdictExposed, exposed: []string{"get pods", "list namespaces"},
			lineMentions: []string{`ClusterRoleBinding "anon-view" of ClusterRole "view" to Group "system:unauthenticated"`, "get pods, list namespaces"}},
		{Name: "a 200 no review explains", probes: probesAnswering(403, map[string]int{"/apis": 200}), allowed: defaults(),
			verdict: verdictExposed, exposed: []string{"get /apis"}, lineMentions: []string{"answered 200 to an anonymous request"}},
		{Name: "cluster-info elsewhere is no default", probes: probesAnswering(403, nil),
			allowed: []accessResult{{Attr: accessAttr{Verb: "get", Resource: "configmaps", Namespace: "default", Name: "cluster-info"}, Allowed: true}},
			verdict: verdictExposed, exposed: []string{`get configmaps "cluster-info" in default`}, lineMentions: []string{"allowed by an authorizer that gives no reason"}},
		{Name: "anonymous on more than the health paths counts as on", probes: probesAnswering(401, map[string]int{"/version": 200, "/healthz": 200}),
			allowed: defaults(), verdict: verdictRBACLimited},
		{Name: "a custom allow list that allows the grant", probes: probesAnswering(403, map[string]int{"/api/v1/namespaces": 200}),
			allowed: slices.Concat(defaults(), viewGrant()),
			allow:   append(slices.Clone(defaultAllow), allowRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}}),
			verdict: verdictRBACLimited},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			allow := tc.allow
			if allow == nil {
				allow = defaultAllow
			}
			ex := judgeExposure(tc.probes, tc.allowed, allow)
			if ex.verdict != tc.verdict {
				t.Errorf("verdict %q, want %q (%s)", ex.verdict, tc.verdict, ex.line())
			}
			var exposed []string
			for _, r := range ex.exposed {
				exposed = append(exposed, r.Attr.String())
			}
			if !slices.Equal(exposed, tc.exposed) {
				t.Errorf("exposed %q, want %q", exposed, tc.exposed)
			}
			if len(ex.latent) != tc.latent {
				t.Errorf("%d latent, want %d: %v", len(ex.latent), tc.latent, ex.latent)
			}
			line := ex.line()
			if !strings.HasPrefix(line, tc.verdict+": ") {
				t.Errorf("line %q does not start with the verdict %q", line, tc.verdict)
			}
			for _, m := range tc.lineMentions {
				if !strings.Contains(line, m) {
					t.Errorf("line %q lacks %q", line, m)
				}
			}
		})
	}
}

func TestAllowsDefaults(t *testing.T) {
	cases := []struct {
		attr accessAttr
		want bool
	}{
		{accessAttr{Verb: "get", Path: "/version"}, true},
		{accessAttr{Verb: "get", Path: "/version/"}, true},
		{accessAttr{Verb: "get", Path: "/livez"}, true},
		{accessAttr{Verb: "get", Path: "/livez/etcd"}, false},
		{accessAttr{Verb: "get", Path: "/api"}, false},
		{accessAttr{Verb: "post", Path: "/version"}, false},
		{accessAttr{Verb: "get", Resource: "configmaps", Namespace: "kube-public", Name: "cluster-info"}, true},
		{accessAttr{Verb: "get", Resource: "configmaps", Namespace: "kube-public"}, false},
		{accessAttr{Verb: "list", Resource: "configmaps", Namespace: "kube-public", Name: "cluster-info"}, false},
		{accessAttr{Verb: "get", Resource: "configmaps", Name: "cluster-info"}, false}, // in every namespace
		{accessAttr{Verb: "get", Resource: "configmaps", Namespace: "default", Name: "cluster-info"}, false},
		{accessAttr{Verb: "get", Group: "apps", Resource: "configmaps", Namespace: "kube-public", Name: "cluster-info"}, false},
	}
	for _, tc := range cases {
		if got := allows(defaultAllow, tc.attr); got != tc.want {
			t.Errorf("allows(defaults, %s) = %v, want %v", tc.attr, got, tc.want)
		}
	}
	wild := []allowRule{
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz/*"}},
		{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"pods/log"}, Namespace: "team"},
	}
	for _, tc := range []struct {
		attr accessAttr
		want bool
	}{
		{accessAttr{Verb: "get", Path: "/healthz/etcd"}, true},
		{accessAttr{Verb: "get", Resource: "pods/log", Namespace: "team"}, true},
		{accessAttr{Verb: "get", Resource: "pods/log", Namespace: "other"}, false},
		{accessAttr{Verb: "get", Resource: "pods", Namespace: "team"}, false},
	} {
		if got := allows(wild, tc.attr); got != tc.want {
			t.Errorf("allows(wildcards, %s) = %v, want %v", tc.attr, got, tc.want)
		}
	}
}

// TestExposureAttrs: the sweep asks about every verb of every discovered
// resource, in the namespaces of RoleBindings to anonymous users too, the
// listed paths and the probes, and the exact rules bound to anonymous
// users (resource names and all).
func TestExposureAttrs(t *testing.T) {
	resources := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Verbs: []string{"get", "list"}},
			{Name: "pods/exec", Namespaced: true, Verbs: []string{"create"}},
			{Name: "nodes", Verbs: []string{"get"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Namespaced: true, Verbs: []string{"delete"}}}},
	}
	state := &rbacState{
		Roles: []rbacv1.Role{{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "team"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"token"}}}}},
		RoleBindings: []rbacv1.RoleBinding{{ObjectMeta: metav1.ObjectMeta{Name: "anon-reader", Namespace: "team"},
			RoleRef:  rbacv1.RoleRef{Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: anonymousUser}}}},
		ClusterRoleBindings: []rbacv1.ClusterRoleBinding{{ObjectMeta: metav1.ObjectMeta{Name: "someone"},
			RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}},
	}
	v := viewOf(state)
	bound := boundToAnonymous(v)
	if len(bound) != 1 || bound[0].ref.name != "anon-reader" {
		t.Fatalf("bound to anonymous: %v, want the RoleBinding anon-reader", bound)
	}
	var got []string
	for _, a := range exposureAttrs(resources, []string{"/metrics", "/api"}, v, bound) {
		got = append(got, a.String())
	}
	for _, want := range []string{
		"get pods", "list pods", "create pods/exec", "get nodes", "delete deployments.apps",
		"get pods in team", "create pods/exec in team", "delete deployments.apps in team",
		`get secrets "token" in team`,
		"get /metrics", "get /api", "get /openid/v1/jwks", `get configmaps "cluster-info" in kube-public`, "list namespaces",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("not asked: %s (asked: %q)", want, got)
		}
	}
	if slices.Contains(got, "get nodes in team") {
		t.Errorf("asked about a cluster-scoped resource in a namespace: %q", got)
	}
	if n := len(slices.Compact(slices.Clone(got))); n != len(got) {
		t.Errorf("asked about something twice: %q", got)
	}
}

func TestExposureValidateDefaults(t *testing.T) {
	sc, err := Load("anonymous-exposure")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sc.Steps, func(st *Step) bool { return st.Kind == "anonymousExposure" })
	if i < 0 {
		t.Fatal("the scenario has no anonymousExposure step")
	}
	e := sc.Steps[i].Action.(*exposureStep)
	if !slices.Equal(e.Accept, []string{verdictOff, verdictHealthOnly, verdictRBACLimited}) {
		t.Errorf("default accept %q", e.Accept)
	}
	if len(e.Allow) != len(defaultAllow) {
		t.Errorf("default allow %v", e.Allow)
	}
	if got := e.handout(sc, sc.Steps[i]); !slices.Contains(got, "kubectl auth can-i --list --as=system:anonymous --as-group=system:unauthenticated") ||
		!slices.Contains(got, `curl --cacert "$CACERT" "$APISERVER/openid/v1/jwks"`) {
		t.Errorf("handout %q", got)
	}
}

// TestExposureAllowReplaces: an allow list given replaces the defaults.
func TestExposureAllowReplaces(t *testing.T) {
	sc, err := Parse("own.yaml", []byte(`name: own
title: Own allow list
steps:
  - id: create-cluster
    title: Create a cluster
    cluster: create
  - id: exposure
    title: Exposure
    anonymousExposure:
      allow:
        - verbs: [get]
          nonResourceURLs: [/version]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := sc.Steps[1].Action.(*exposureStep)
	if len(e.Allow) != 1 || allows(e.Allow, accessAttr{Verb: "get", Path: "/healthz"}) || !allows(e.Allow, accessAttr{Verb: "get", Path: "/version"}) {
		t.Errorf("allow %+v, want only get /version", e.Allow)
	}
}
