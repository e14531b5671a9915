package steps

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/anonlab/anonlab/steps/cluster/kube"
)

// The guard reads a manifest against the cluster's RBAC before the apply
// step opens anything to anonymous users, then asks the cluster what they
// may do.

const (
	anonymousUser        = "system:anonymous"
	unauthenticatedGroup = "system:unauthenticated"
)

// maxAccessAttrs caps accessAttrs: one SubjectAccessReview each.
const maxAccessAttrs = 32

// rbacState is the cluster's RBAC as read by readRBAC.
type rbacState struct {
	ClusterRoles        []rbacv1.ClusterRole
	Roles               []rbacv1.Role
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	RoleBindings        []rbacv1.RoleBinding
}

// readRBAC lists the cluster's ClusterRoles, Roles, ClusterRoleBindings and
// RoleBindings, in every namespace.
func readRBAC(ctx context.Context, cs *kube.Client) (*rbacState, error) {
	crs, err := kube.List[rbacv1.ClusterRoleList](ctx, cs, kube.ClusterRoles, "")
	if err != nil {
		return nil, fmt.Errorf("list ClusterRoles: %w", err)
	}
	roles, err := kube.List[rbacv1.RoleList](ctx, cs, kube.Roles, metav1.NamespaceAll)
	if err != nil {
		return nil, fmt.Errorf("list Roles: %w", err)
	}
	crbs, err := kube.List[rbacv1.ClusterRoleBindingList](ctx, cs, kube.ClusterRoleBindings, "")
	if err != nil {
		return nil, fmt.Errorf("list ClusterRoleBindings: %w", err)
	}
	rbs, err := kube.List[rbacv1.RoleBindingList](ctx, cs, kube.RoleBindings, metav1.NamespaceAll)
	if err != nil {
		return nil, fmt.Errorf("list RoleBindings: %w", err)
	}
	return &rbacState{ClusterRoles: crs.Items, Roles: roles.Items, ClusterRoleBindings: crbs.Items, RoleBindings: rbs.Items}, nil
}

// rbacRef names an RBAC object; namespace is "" for cluster-scoped kinds.
type rbacRef struct{ kind, namespace, name string }

func (r rbacRef) String() string {
	if r.namespace != "" {
		return fmt.Sprintf("%s %q in namespace %q", r.kind, r.name, r.namespace)
	}
	return fmt.Sprintf("%s %q", r.kind, r.name)
}

// role is a Role or a ClusterRole, binding a RoleBinding or a
// ClusterRoleBinding: the guard treats each pair alike.
type role struct {
	ref         rbacRef
	labels      map[string]string
	rules       []rbacv1.PolicyRule
	aggregation *rbacv1.AggregationRule
}

type binding struct {
	ref      rbacRef
	roleRef  rbacv1.RoleRef
	subjects []rbacv1.Subject
}

type rbacView struct {
	roles    []role
	bindings []binding
}

func viewOf(s *rbacState) rbacView {
	var v rbacView
	for _, r := range s.ClusterRoles {
		v.roles = append(v.roles, role{rbacRef{"ClusterRole", "", r.Name}, r.Labels, r.Rules, r.AggregationRule})
	}
	for _, r := range s.Roles {
		v.roles = append(v.roles, role{rbacRef{"Role", r.Namespace, r.Name}, r.Labels, r.Rules, nil})
	}
	for _, b := range s.ClusterRoleBindings {
		v.bindings = append(v.bindings, binding{rbacRef{"ClusterRoleBinding", "", b.Name}, b.RoleRef, b.Subjects})
	}
	for _, b := range s.RoleBindings {
		v.bindings = append(v.bindings, binding{rbacRef{"RoleBinding", b.Namespace, b.Name}, b.RoleRef, b.Subjects})
	}
	return v
}

// decodeRBAC reads the RBAC objects of a manifest; an object that repeats
// an earlier one replaces it, as applying them in order does. It returns
// an error for each RBAC object that does not decode.
func decodeRBAC(objs []*unstructured.Unstructured) (rbacView, []error) {
	var s rbacState
	var errs []error
	for _, obj := range objs {
		if obj.GroupVersionKind().Group != rbacv1.GroupName {
			continue
		}
		var err error
		switch obj.GetKind() {
		case "ClusterRole":
			err = decodeInto(obj, &s.ClusterRoles)
		case "Role":
			err = decodeInto(obj, &s.Roles)
		case "ClusterRoleBinding":
			err = decodeInto(obj, &s.ClusterRoleBindings)
		case "RoleBinding":
			err = decodeInto(obj, &s.RoleBindings)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s %q: %w", obj.GetKind(), obj.GetName(), err))
		}
	}
	// Where resourceClient applies a namespaced object that names none.
	for i := range s.Roles {
		s.Roles[i].Namespace = cmp.Or(s.Roles[i].Namespace, metav1.NamespaceDefault)
	}
	for i := range s.RoleBindings {
		s.RoleBindings[i].Namespace = cmp.Or(s.RoleBindings[i].Namespace, metav1.NamespaceDefault)
	}
	return rbacView{}.with(viewOf(&s)), errs
}

func decodeInto[T any](obj *unstructured.Unstructured, list *[]T) error {
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// with returns v with the objects of m in place of those they name.
func (v rbacView) with(m rbacView) rbacView {
	return rbacView{roles: overlay(v.roles, m.roles, func(r role) rbacRef { return r.ref }),
		bindings: overlay(v.bindings, m.bindings, func(b binding) rbacRef { return b.ref })}
}

func overlay[T any](base, objs []T, key func(T) rbacRef) []T {
	out := slices.Clone(base)
	for _, o := range objs {
		if i := slices.IndexFunc(out, func(b T) bool { return key(b) == key(o) }); i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

func (v rbacView) role(ref rbacRef) *role {
	if i := slices.IndexFunc(v.roles, func(r role) bool { return r.ref == ref }); i >= 0 {
		return &v.roles[i]
	}
	return nil
}

func (v rbacView) binding(ref rbacRef) *binding {
	if i := slices.IndexFunc(v.bindings, func(b binding) bool { return b.ref == ref }); i >= 0 {
		return &v.bindings[i]
	}
	return nil
}

// anonymousSubjects are the subjects of b that name system:anonymous or
// system:unauthenticated, whatever their kind.
func (b binding) anonymousSubjects() []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, s := range b.subjects {
		if s.Name == anonymousUser || s.Name == unauthenticatedGroup {
			out = append(out, s)
		}
	}
	return out
}

// grants reports whether b hands the rules of r to its subjects.
func (b binding) grants(r rbacRef) bool {
	if b.roleRef.Kind != r.kind || b.roleRef.Name != r.name {
		return false
	}
	return r.kind == "ClusterRole" || b.ref.kind == "RoleBinding" && b.ref.namespace == r.namespace
}

func describeSubjects(subjects []rbacv1.Subject) string {
	var parts []string
	for _, s := range subjects {
		parts = append(parts, fmt.Sprintf("%s %q", s.Kind, s.Name))
	}
	return strings.Join(parts, " and ")
}

// anonymousOpenings says, one sentence each, how applying objs with
// server-side apply would let system:anonymous or system:unauthenticated do
// something new, judged against state as it would be after the apply:
//   - a binding in objs names them (even one that exists already: the guard
//     errs towards asking);
//   - a role in objs gains rules while a binding that already lets them in
//     grants it (a binding in objs that newly lets them in is told by its
//     own sentence, which covers everything the role grants);
//   - a ClusterRole in objs adds rules, through its labels, to an
//     aggregated ClusterRole they are already let into, or such a role gains
//     aggregation selectors.
//
// An RBAC object that does not decode is told too: the guard cannot say
// what it grants.
func anonymousOpenings(state *rbacState, objs []*unstructured.Unstructured) []string {
	m, errs := decodeRBAC(objs)
	var out []string
	for _, err := range errs {
		out = append(out, fmt.Sprintf("%v: the guard cannot tell what it grants", err))
	}
	before := viewOf(state)
	after := before.with(m)
	for _, b := range m.bindings {
		if subjects := b.anonymousSubjects(); len(subjects) > 0 {
			out = append(out, fmt.Sprintf("%s binds %s %q to %s", b.ref, b.roleRef.Kind, b.roleRef.Name, describeSubjects(subjects)))
		}
	}
	// openTo lists the bindings that let anonymous users into r before the
	// apply and still do after it.
	openTo := func(r rbacRef) []binding {
		var open []binding
		for _, b := range after.bindings {
			was := before.binding(b.ref)
			if b.grants(r) && len(b.anonymousSubjects()) > 0 && was != nil && was.roleRef == b.roleRef && len(was.anonymousSubjects()) > 0 {
				open = append(open, b)
			}
		}
		return open
	}
	boundBy := func(b binding) string {
		return fmt.Sprintf("is bound to %s by %s", describeSubjects(b.anonymousSubjects()), b.ref)
	}
	for _, r := range m.roles {
		gained := uncovered(before.role(r.ref), r.rules)
		if len(gained) == 0 {
			continue
		}
		for _, b := range openTo(r.ref) {
			out = append(out, fmt.Sprintf("%s gains rules (%s) and %s", r.ref, describeRules(gained), boundBy(b)))
		}
	}
	for _, c := range m.roles {
		if c.ref.kind != "ClusterRole" {
			continue
		}
		for _, a := range after.roles {
			if a.ref == c.ref || a.aggregation == nil || !selects(a.aggregation.ClusterRoleSelectors, c.labels) {
				continue
			}
			gained := uncovered(before.role(a.ref), c.rules)
			if len(gained) == 0 {
				continue
			}
			for _, b := range openTo(a.ref) {
				out = append(out, fmt.Sprintf("%s adds rules (%s) to %s, whose aggregationRule selects its labels, and %s %s",
					c.ref, describeRules(gained), a.ref, a.ref, boundBy(b)))
			}
		}
	}
	for _, a := range m.roles {
		if a.aggregation == nil {
			continue
		}
		var had []metav1.LabelSelector
		if was := before.role(a.ref); was != nil && was.aggregation != nil {
			had = was.aggregation.ClusterRoleSelectors
		}
		var gained []string
		for _, s := range a.aggregation.ClusterRoleSelectors {
			if !slices.ContainsFunc(had, func(h metav1.LabelSelector) bool { return equality.Semantic.DeepEqual(h, s) }) {
				gained = append(gained, describeSelector(s))
			}
		}
		if len(gained) == 0 {
			continue
		}
		for _, b := range openTo(a.ref) {
			out = append(out, fmt.Sprintf("%s gains an aggregationRule (%s: their rules become its rules) and %s",
				a.ref, strings.Join(gained, "; "), boundBy(b)))
		}
	}
	return out
}

// uncovered are the atomic rules of rules that was (nil: a new role) does
// not grant already.
func uncovered(was *role, rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var owner []rbacv1.PolicyRule
	if was != nil {
		owner = was.rules
	}
	_, gained := validation.Covers(owner, rules)
	return gained
}

// selects reports whether any selector matches the labels, as the
// clusterrole-aggregation controller matches them. A selector that does
// not parse matches nothing: the apiserver rejects such a ClusterRole.
func selects(selectors []metav1.LabelSelector, set map[string]string) bool {
	for _, s := range selectors {
		sel, err := metav1.LabelSelectorAsSelector(&s)
		if err == nil && sel.Matches(labels.Set(set)) {
			return true
		}
	}
	return false
}

func describeSelector(s metav1.LabelSelector) string {
	if sel := metav1.FormatLabelSelector(&s); sel != "" && sel != "<none>" {
		return "selects ClusterRoles labelled " + sel
	}
	return "selects every ClusterRole"
}

// describeRules names atomic rules, at most a handful.
func describeRules(atoms []rbacv1.PolicyRule) string {
	const shown = 6
	var names []string
	for _, a := range atoms {
		if s := ruleAttrs(a, "")[0].String(); !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	if len(names) > shown {
		return strings.Join(names[:shown], ", ") + fmt.Sprintf(" and %d more", len(names)-shown)
	}
	return strings.Join(names, ", ")
}

// accessAttr is one thing a user may ask the apiserver to do: a verb on a
// resource (Resource may carry a subresource, "pods/log") or on a
// non-resource Path. "*" stands for any, as in RBAC.
type accessAttr struct{ Verb, Group, Resource, Namespace, Name, Path string }

// String reads like "list namespaces", "get pods in kube-system",
// "get deployments.apps/scale "web" in default" or "get /api".
func (a accessAttr) String() string {
	if a.Path != "" {
		return a.Verb + " " + a.Path
	}
	resource, sub, _ := strings.Cut(a.Resource, "/")
	s := a.Verb + " " + resource
	if a.Group != "" {
		s += "." + a.Group
	}
	if sub != "" {
		s += "/" + sub
	}
	if a.Name != "" {
		s += fmt.Sprintf(" %q", a.Name)
	}
	if a.Namespace != "" {
		s += " in " + a.Namespace
	}
	return s
}

// ruleAttrs are the attributes a rule touches, in namespace for resources.
func ruleAttrs(rule rbacv1.PolicyRule, namespace string) []accessAttr {
	var out []accessAttr
	for _, atom := range validation.BreakdownRule(rule) {
		if len(atom.NonResourceURLs) > 0 {
			out = append(out, accessAttr{Verb: atom.Verbs[0], Path: atom.NonResourceURLs[0]})
			continue
		}
		a := accessAttr{Verb: atom.Verbs[0], Group: atom.APIGroups[0], Resource: atom.Resources[0], Namespace: namespace}
		if len(atom.ResourceNames) > 0 {
			a.Name = atom.ResourceNames[0]
		}
		out = append(out, a)
	}
	return out
}

// accessAttrs are the attributes the rules of the roles in objs touch: a
// Role's in its namespace, a ClusterRole's cluster-wide and, where a
// RoleBinding in objs grants it, in that binding's namespace. Sorted,
// without repeats, at most maxAccessAttrs. RBAC objects that do not decode
// are left out (anonymousOpenings tells of them).
func accessAttrs(objs []*unstructured.Unstructured) []accessAttr {
	m, _ := decodeRBAC(objs)
	var out []accessAttr
	add := func(r *role, namespace string) {
		for _, rule := range r.rules {
			out = append(out, ruleAttrs(rule, namespace)...)
		}
	}
	for i := range m.roles {
		add(&m.roles[i], m.roles[i].ref.namespace)
	}
	for _, b := range m.bindings {
		if b.ref.kind == "RoleBinding" && b.roleRef.Kind == "ClusterRole" {
			if r := m.role(rbacRef{"ClusterRole", "", b.roleRef.Name}); r != nil {
				add(r, b.ref.namespace)
			}
		}
	}
	out = sortAttrs(out)
	return out[:min(len(out), maxAccessAttrs)]
}

// sortAttrs sorts attrs and drops repeats.
func sortAttrs(attrs []accessAttr) []accessAttr {
	slices.SortFunc(attrs, func(a, b accessAttr) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Group, b.Group),
			cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Verb, b.Verb))
	})
	return slices.Compact(attrs)
}

// accessResult is the cluster's answer for one attribute.
type accessResult struct {
	Attr    accessAttr
	Allowed bool
	Reason  string
}

// anonymousAccess asks the cluster, one SubjectAccessReview each (a few at
// a time; the first error ends it), whether an anonymous request (user
// system:anonymous in group system:unauthenticated) may do each of attrs.
// The results are in the order of attrs.
func anonymousAccess(ctx context.Context, cs *kube.Client, attrs []accessAttr) ([]accessResult, error) {
	out := make([]accessResult, len(attrs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, a := range attrs {
		g.Go(func() (err error) {
			out[i], err = reviewAnonymous(ctx, cs, a)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func reviewAnonymous(ctx context.Context, cs *kube.Client, a accessAttr) (accessResult, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{User: anonymousUser, Groups: []string{unauthenticatedGroup}}
	if a.Path != "" {
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: a.Path, Verb: a.Verb}
	} else {
		resource, sub, _ := strings.Cut(a.Resource, "/")
		spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: resource, Subresource: sub, Name: a.Name,
		}
	}
	sar, err := kube.Create(ctx, cs, kube.SubjectAccessReviews, "", &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return accessResult{}, fmt.Errorf("ask whether anonymous users may %s: %w", a, err)
	}
	reason := sar.Status.Reason
	if sar.Status.EvaluationError != "" {
		reason = strings.TrimSpace(reason + " (evaluation error: " + sar.Status.EvaluationError + ")")
	}
	return accessResult{Attr: a, Allowed: sar.Status.Allowed, Reason: reason}, nil
}

// guard reads objs against the cluster's current RBAC and says how
// applying them would open the cluster to anonymous users.
func (sc *StepContext) guard(ctx context.Context, objs []*unstructured.Unstructured) ([]string, error) {
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err != nil {
		return nil, err
	}
	state, err := readRBAC(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("read the cluster's RBAC before applying: %w", err)
	}
	return anonymousOpenings(state, objs), nil
}

// anonymousAccess asks the cluster what anonymous users may do of attrs;
// a cluster that does not answer is told in the log, not a failure.
func (sc *StepContext) anonymousAccess(ctx context.Context, attrs []accessAttr) []accessResult {
	if len(attrs) == 0 {
		return nil
	}
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err == nil {
		var res []accessResult
		if res, err = anonymousAccess(ctx, cs, attrs); err == nil {
			return res
		}
	}
	sc.Log("could not ask what anonymous users may do: %v", err)
	return nil
}

// recordOpened reports what anonymous users may do after a step that they
// could not before, and remembers it so that the end of the run can check
// it is closed again.
func (sc *StepContext) recordOpened(before, after []accessResult) {
	was := map[accessAttr]bool{}
	for _, r := range before {
		was[r.Attr] = r.Allowed
	}
	var opened []string
	for _, r := range after {
		if r.Allowed && !was[r.Attr] {
			sc.run.opened = append(sc.run.opened, r.Attr)
			opened = append(opened, r.Attr.String())
		}
	}
	if len(opened) > 0 {
		sc.Log("anonymous users may now %s (SubjectAccessReview)", strings.Join(opened, ", "))
	}
}

// checkClosed asks the cluster whether what the run opened to anonymous
// users is closed again; what is still open fails the run.
func (r *runner) checkClosed(ctx context.Context) {
	if len(r.opened) == 0 {
		return
	}
	sc := r.safetyContext()
	var still []string
	for _, res := range sc.anonymousAccess(ctx, r.opened) {
		if res.Allowed {
			still = append(still, res.Attr.String())
		}
	}
	if len(still) > 0 {
		sc.Log("safety: anonymous users may still %s", strings.Join(still, ", "))
		r.safetyFailures++
		return
	}
	sc.Log("safety: closed again: anonymous users may no longer %s", describeAttrs(r.opened))
	r.opened = nil
}

func describeAttrs(attrs []accessAttr) string {
	var s []string
	for _, a := range attrs {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}
