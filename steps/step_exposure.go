package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/anonlab/anonlab/steps/cluster/kube"
)

// exposureStep reports what anonymous users can reach on any cluster and
// fails when it is more than an allow list. It sends the anonymous
// requests a scanner would, and asks the cluster, as the admin, what
// system:anonymous in system:unauthenticated may do: one
// SubjectAccessReview (answered, never stored) for every verb of every
// resource discovery lists, every non-resource URL the apiserver serves,
// and every rule of the RBAC bindings that name them. It writes nothing,
// so it runs on any cluster without the opt-in.
//
//	anonymousExposure: {}
//	anonymousExposure: {accept: [off, health-only]}
type exposureStep struct {
	// Allow is what anonymous users may do without it counting as
	// exposure; nil: Kubernetes' own defaults (defaultAllow).
	Allow []allowRule `yaml:"allow"`
	// Accept are the verdicts that pass; nil: all but exposed.
	Accept []string `yaml:"accept"`
}

// allowRule is an RBAC PolicyRule, optionally limited to one namespace.
type allowRule struct {
	Verbs           []string `yaml:"verbs"`
	APIGroups       []string `yaml:"apiGroups"`
	Resources       []string `yaml:"resources"`
	ResourceNames   []string `yaml:"resourceNames"`
	NonResourceURLs []string `yaml:"nonResourceURLs"`
	Namespace       string   `yaml:"namespace"`
}

// The verdicts, from the most closed.
const (
	verdictOff         = "off"
	verdictHealthOnly  = "health-only"
	verdictRBACLimited = "rbac-limited"
	verdictExposed     = "exposed"
)

var verdicts = []string{verdictOff, verdictHealthOnly, verdictRBACLimited, verdictExposed}

// defaultAllow is what Kubernetes itself lets anonymous users do.
var defaultAllow = []allowRule{
	// The ClusterRole system:public-info-viewer, which default RBAC binds
	// to system:unauthenticated.
	{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}},
	// kubeadm's Role kubeadm:bootstrap-signer-clusterinfo, bound to
	// system:anonymous: a joining node reads cluster-info before it has
	// credentials.
	{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}, Namespace: "kube-public"},
}

// exposureProbes are the anonymous requests the step sends, with what each
// asks of authorization.
var exposureProbes = []struct {
	path string
	attr accessAttr
}{
	{"/api", accessAttr{Verb: "get", Path: "/api"}},
	{"/apis", accessAttr{Verb: "get", Path: "/apis"}},
	{"/version", accessAttr{Verb: "get", Path: "/version"}},
	{"/healthz", accessAttr{Verb: "get", Path: "/healthz"}},
	{"/livez", accessAttr{Verb: "get", Path: "/livez"}},
	{"/readyz", accessAttr{Verb: "get", Path: "/readyz"}},
	{"/.well-known/openid-configuration", accessAttr{Verb: "get", Path: "/.well-known/openid-configuration"}},
	{"/openid/v1/jwks", accessAttr{Verb: "get", Path: "/openid/v1/jwks"}},
	{"/api/v1/namespaces", accessAttr{Verb: "list", Resource: "namespaces"}},
	{"/api/v1/namespaces/kube-public/configmaps/cluster-info", accessAttr{Verb: "get", Resource: "configmaps", Namespace: "kube-public", Name: "cluster-info"}},
}

func (e *exposureStep) Validate(v *Validator) error {
	for i, a := range e.Accept {
		if !slices.Contains(verdicts, a) {
			return v.Errorf(fmt.Sprintf("accept[%d]", i), "%q: want %s", a, strings.Join(verdicts, ", "))
		}
	}
	if e.Accept == nil {
		e.Accept = verdicts[:3]
	}
	for i, r := range e.Allow {
		field := fmt.Sprintf("allow[%d]", i)
		switch {
		case len(r.Verbs) == 0:
			return v.Errorf(field+".verbs", "required: e.g. [get]")
		case (len(r.Resources) == 0) == (len(r.NonResourceURLs) == 0):
			return v.Errorf(field, "give exactly one of resources, nonResourceURLs")
		case len(r.Resources) > 0 && len(r.APIGroups) == 0:
			return v.Errorf(field+".apiGroups", `required with resources ("" is the core group)`)
		case len(r.NonResourceURLs) > 0 && (len(r.APIGroups) > 0 || len(r.ResourceNames) > 0 || r.Namespace != ""):
			return v.Errorf(field, "nonResourceURLs take no apiGroups, resourceNames or namespace")
		}
		for j, u := range r.NonResourceURLs {
			if !strings.HasPrefix(u, "/") && u != "*" {
				return v.Errorf(fmt.Sprintf("%s.nonResourceURLs[%d]", field, j), "%q: a path starting with /", u)
			}
		}
	}
	if e.Allow == nil {
		e.Allow = defaultAllow
	}
	return nil
}

func (e *exposureStep) Run(ctx context.Context, sc *StepContext) error {
	var probes []probeResult
	for _, p := range exposureProbes {
		q := &requestStep{As: "anonymous", Method: http.MethodGet, Path: p.path}
		if err := q.Run(ctx, sc); err != nil {
			return err
		}
		probes = append(probes, probeResult{path: p.path, attr: p.attr, status: sc.response.Status})
	}
	cfg := sc.Backend.AdminConfig()
	// One review each is hundreds of requests: client-go's default of 5
	// a second would take minutes. The apiserver's priority and fairness
	// still applies.
	cfg.QPS, cfg.Burst = 400, 400
	cs, err := kube.New(cfg)
	if err != nil {
		return err
	}
	sc.Command(`kubectl get clusterrolebindings,rolebindings --all-namespaces -o wide | grep -E 'system:(anonymous|unauthenticated)'`)
	var view rbacView
	if state, err := readRBAC(ctx, cs); err != nil {
		sc.Log("cannot read the cluster's RBAC, so the bindings that name anonymous users are not listed (the reviews below still say which binding allows what): %v", err)
	} else {
		view = viewOf(state)
	}
	bound := boundToAnonymous(view)
	for _, b := range bound {
		sc.Log("%s binds %s %q to %s", b.ref, b.roleRef.Kind, b.roleRef.Name, describeSubjects(b.anonymousSubjects()))
	}
	resources, err := cs.PreferredResources(ctx)
	var partial kube.GroupDiscoveryFailed
	if err != nil && !errors.As(err, &partial) {
		return fmt.Errorf("discover the cluster's resources: %w", err)
	} else if err != nil {
		sc.Log("some API groups did not answer discovery; their resources are not asked about: %v", err)
	}
	paths, err := cs.RootPaths(ctx)
	if err != nil {
		return fmt.Errorf("read the apiserver's paths (GET /): %w", err)
	}
	attrs := exposureAttrs(resources, paths, view, bound)
	sc.Command("kubectl auth can-i --list --as=system:anonymous --as-group=system:unauthenticated")
	results, err := anonymousAccess(ctx, cs, attrs)
	if err != nil {
		return fmt.Errorf("%w (the kubeconfig's user needs create on subjectaccessreviews.authorization.k8s.io)", err)
	}
	var allowed []accessResult
	for _, r := range results {
		if r.Allowed {
			allowed = append(allowed, r)
		}
	}
	sc.Log("asked %d SubjectAccessReviews (user system:anonymous, group system:unauthenticated): %d allowed", len(results), len(allowed))
	ex := judgeExposure(probes, allowed, e.Allow)
	if within := withinAllow(allowed, e.Allow); len(within) > 0 {
		sc.Log("allowed and in the allow list: %s", describeAttrs(within))
	}
	for _, g := range groupByReason(ex.exposed, 0) {
		sc.Log("exposed: %s", g)
	}
	for _, g := range groupByReason(ex.latent, 0) {
		sc.Log("latent (RBAC allows it, but anonymous requests do not reach it now): %s", g)
	}
	sc.Check(CheckResult{Name: "anonymous exposure", Want: "one of " + strings.Join(e.Accept, ", "), Got: ex.line(), OK: slices.Contains(e.Accept, ex.verdict)})
	return nil
}

// probeResult is the answer to one anonymous request.
type probeResult struct {
	path   string
	attr   accessAttr
	status int
}

// exposure is the step's finding.
type exposure struct {
	verdict string
	// reached lists the probes that were not refused 401.
	reached []probeResult
	// exposed is what anonymous users may do beyond the allow list.
	exposed []accessResult
	// latent is what RBAC allows them beyond the allow list that their
	// requests do not reach (authentication refuses them first).
	latent []accessResult
}

// judgeExposure reads the anonymous requests' answers and what reviews
// allowed anonymous users:
//   - every request answered 401: anonymous authentication is off;
//   - /api answered 401 and only health paths answered otherwise: an
//     AuthenticationConfiguration lets anonymous requests reach only them
//     (KEP-4633);
//   - otherwise anonymous requests are authenticated: whatever allowed
//     beyond the allow list is exposed, and nothing beyond it is
//     rbac-limited.
//
// A request that answered 2xx and the allow list does not cover counts as
// exposed whatever the reviews said.
func judgeExposure(probes []probeResult, allowed []accessResult, allow []allowRule) exposure {
	var ex exposure
	beyond := slices.DeleteFunc(slices.Clone(allowed), func(r accessResult) bool { return allows(allow, r.Attr) })
	for _, p := range probes {
		if p.status == http.StatusUnauthorized {
			continue
		}
		ex.reached = append(ex.reached, p)
		if p.status/100 == 2 && !allows(allow, p.attr) && !slices.ContainsFunc(beyond, func(r accessResult) bool { return r.Attr == p.attr }) {
			beyond = append(beyond, accessResult{Attr: p.attr, Allowed: true, Reason: fmt.Sprintf("answered %d to an anonymous request", p.status)})
		}
	}
	// /api is among the probes: reaching health paths only means 401 there.
	healthOnly := !slices.ContainsFunc(ex.reached, func(p probeResult) bool { return !slices.Contains(healthPaths, p.path) })
	switch {
	case len(ex.reached) == 0:
		ex.verdict, ex.latent = verdictOff, beyond
	case healthOnly:
		ex.verdict = verdictHealthOnly
		for _, r := range beyond {
			if slices.ContainsFunc(ex.reached, func(p probeResult) bool { return p.attr == r.Attr }) {
				ex.exposed = append(ex.exposed, r)
			} else {
				ex.latent = append(ex.latent, r)
			}
		}
		if len(ex.exposed) > 0 {
			ex.verdict = verdictExposed
		}
	case len(beyond) > 0:
		ex.verdict, ex.exposed = verdictExposed, beyond
	default:
		ex.verdict = verdictRBACLimited
	}
	return ex
}

// line is the verdict in a sentence.
func (ex exposure) line() string {
	statusOf := func(path string) string {
		for _, p := range ex.reached {
			if p.path == path {
				return fmt.Sprint(p.status)
			}
		}
		return "401"
	}
	var reached []string
	for _, p := range ex.reached {
		reached = append(reached, fmt.Sprintf("%s %d", p.path, p.status))
	}
	switch ex.verdict {
	case verdictOff:
		return "off: anonymous authentication is off; every anonymous request was answered 401"
	case verdictHealthOnly:
		return "health-only: anonymous requests reach only the health paths (" + strings.Join(reached, ", ") + "; /api 401), as an AuthenticationConfiguration allows (KEP-4633)"
	case verdictRBACLimited:
		return "rbac-limited: anonymous authentication is on (/api " + statusOf("/api") + "); anonymous users may do nothing beyond the allow list"
	}
	return fmt.Sprintf("exposed: anonymous users may %s", strings.Join(groupByReason(ex.exposed, 8), "; "))
}

// allows reports whether an allow rule covers attr.
func allows(allow []allowRule, attr accessAttr) bool {
	want := rbacv1.PolicyRule{Verbs: []string{attr.Verb}}
	if attr.Path != "" {
		want.NonResourceURLs = []string{attr.Path}
	} else {
		want.APIGroups, want.Resources = []string{attr.Group}, []string{attr.Resource}
		if attr.Name != "" {
			want.ResourceNames = []string{attr.Name}
		}
	}
	for _, r := range allow {
		if r.Namespace != "" && r.Namespace != attr.Namespace {
			continue
		}
		rule := rbacv1.PolicyRule{Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames, NonResourceURLs: r.NonResourceURLs}
		if ok, _ := validation.Covers([]rbacv1.PolicyRule{rule}, []rbacv1.PolicyRule{want}); ok {
			return true
		}
	}
	return false
}

func withinAllow(allowed []accessResult, allow []allowRule) []accessAttr {
	var out []accessAttr
	for _, r := range allowed {
		if allows(allow, r.Attr) {
			out = append(out, r.Attr)
		}
	}
	return out
}

// groupByReason says what is allowed, grouped by what allows it (RBAC
// names the binding, its role and its subject), at most shown attributes
// each (0: all).
func groupByReason(rs []accessResult, shown int) []string {
	var reasons []string
	by := map[string][]string{}
	for _, r := range rs {
		why := strings.TrimPrefix(r.Reason, "RBAC: ")
		if why == "" {
			why = "allowed by an authorizer that gives no reason"
		}
		if _, ok := by[why]; !ok {
			reasons = append(reasons, why)
		}
		by[why] = append(by[why], r.Attr.String())
	}
	var out []string
	for _, why := range reasons {
		what := by[why]
		if shown == 0 {
			shown = len(what)
		}
		s := strings.Join(what[:min(len(what), shown)], ", ")
		if len(what) > shown {
			s += fmt.Sprintf(" and %d more", len(what)-shown)
		}
		out = append(out, s+" ("+why+")")
	}
	return out
}

// boundToAnonymous are the bindings that name system:anonymous or
// system:unauthenticated.
func boundToAnonymous(v rbacView) []binding {
	var out []binding
	for _, b := range v.bindings {
		if len(b.anonymousSubjects()) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// exposureAttrs are what the step asks about: every verb of every
// discovered resource cluster-wide, and in each namespace where a
// RoleBinding names anonymous users; a get of every path the apiserver
// lists and every probe; and every rule of the roles bound to anonymous
// users (which names resource names and URL wildcards the sweep does not).
func exposureAttrs(resources []*metav1.APIResourceList, paths []string, v rbacView, bound []binding) []accessAttr {
	var namespaces []string
	for _, b := range bound {
		if b.ref.kind == "RoleBinding" && !slices.Contains(namespaces, b.ref.namespace) {
			namespaces = append(namespaces, b.ref.namespace)
		}
	}
	var out []accessAttr
	for _, list := range resources {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			for _, verb := range r.Verbs {
				out = append(out, accessAttr{Verb: verb, Group: gv.Group, Resource: r.Name})
				if r.Namespaced {
					for _, ns := range namespaces {
						out = append(out, accessAttr{Verb: verb, Group: gv.Group, Resource: r.Name, Namespace: ns})
					}
				}
			}
		}
	}
	for _, p := range paths {
		out = append(out, accessAttr{Verb: "get", Path: p})
	}
	for _, p := range exposureProbes {
		out = append(out, p.attr)
	}
	for _, b := range bound {
		ref, ns := rbacRef{b.roleRef.Kind, "", b.roleRef.Name}, ""
		if b.ref.kind == "RoleBinding" {
			ns = b.ref.namespace
			if ref.kind == "Role" {
				ref.namespace = ns
			}
		}
		if r := v.role(ref); r != nil {
			for _, rule := range r.rules {
				out = append(out, ruleAttrs(rule, ns)...)
			}
		}
	}
	return sortAttrs(out)
}

func (e *exposureStep) handout(*Scenario, *Step) []string {
	var out []string
	for _, p := range exposureProbes {
		out = append(out, (&requestStep{As: "anonymous", Method: http.MethodGet, Path: p.path}).shellCommand())
	}
	return append(out,
		`kubectl get clusterrolebindings,rolebindings --all-namespaces -o wide | grep -E 'system:(anonymous|unauthenticated)'`,
		"kubectl auth can-i --list --as=system:anonymous --as-group=system:unauthenticated")
}
