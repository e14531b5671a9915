package clustertest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/anonlab/anonlab/steps/cluster"
)

// state is what one cluster's server stores.
type state struct {
	now     func() time.Time
	created time.Time

	mu              sync.Mutex
	objects         map[objectKey][]byte // applied ClusterRoles and ClusterRoleBindings, as JSON
	serviceAccounts map[objectKey]bool
	tokens          map[string]string // token → the user it authenticates
}

type objectKey struct{ resource, namespace, name string }

func newState(now func() time.Time) *state {
	return &state{now: now, created: now().UTC().Truncate(time.Second), objects: map[objectKey][]byte{},
		serviceAccounts: map[objectKey]bool{}, tokens: map[string]string{}}
}

func (st *state) objectNames() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for k := range st.objects {
		out = append(out, k.resource+"/"+k.name)
	}
	for k := range st.serviceAccounts {
		out = append(out, k.resource+"/"+k.namespace+"/"+k.name)
	}
	slices.Sort(out)
	return out
}

type user struct {
	name   string
	groups []string
}

var anonymous = user{name: "system:anonymous", groups: []string{"system:unauthenticated"}}

// request is what authorization looks at, as kube-apiserver's RequestInfo.
type request struct {
	path      string
	verb      string
	isRes     bool
	group     string
	resource  string
	sub       string
	namespace string
	name      string
}

func (q request) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: q.group, Resource: q.resource}
}

const rbacGroup = "rbac.authorization.k8s.io"

func parseRequest(r *http.Request) request {
	q := request{path: r.URL.Path, verb: strings.ToLower(r.Method)}
	if r.Method == http.MethodHead {
		q.verb = "get"
	}
	var parts []string
	switch p := strings.Trim(r.URL.Path, "/"); {
	case strings.HasPrefix(p, "api/v1/"):
		parts = strings.Split(strings.TrimPrefix(p, "api/v1/"), "/")
	case strings.HasPrefix(p, "apis/"):
		if s := strings.Split(strings.TrimPrefix(p, "apis/"), "/"); len(s) > 2 {
			q.group, parts = s[0], s[2:]
		}
	}
	if len(parts) == 0 {
		return q
	}
	q.isRes = true
	if parts[0] == "namespaces" && len(parts) > 2 {
		q.namespace, parts = parts[1], parts[2:]
	}
	q.resource = parts[0]
	if len(parts) > 1 {
		q.name = parts[1]
	}
	if len(parts) > 2 {
		q.sub = parts[2]
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q.verb = "get"
		if q.name == "" {
			q.verb = "list"
		}
	case http.MethodPost:
		q.verb = "create"
	case http.MethodPut:
		q.verb = "update"
	}
	return q
}

type handler struct {
	b  *Backend
	st *state
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, ok := h.authenticate(r)
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	q := parseRequest(r)
	if !h.st.authorize(u, q) {
		writeStatus(w, forbidden(u, q))
		return
	}
	if !q.isRes {
		h.nonResource(w, r, q)
		return
	}
	switch {
	case q.group == "" && q.resource == "namespaces":
		h.namespaces(w, q)
	case q.group == "" && q.resource == "serviceaccounts" && q.namespace != "":
		h.serviceAccounts(w, r, q)
	case q.group == rbacGroup && (q.resource == "clusterroles" || q.resource == "clusterrolebindings") && q.name != "":
		h.rbacObject(w, r, q)
	case q.group == rbacGroup && q.verb == "list":
		h.rbacList(w, q)
	case q.group == "authorization.k8s.io" && q.resource == "subjectaccessreviews" && q.verb == "create":
		h.accessReview(w, r)
	default:
		writeStatus(w, notFound())
	}
}

// authenticate is kube-apiserver's chain: a client certificate, a bearer
// token, else anonymous unless --anonymous-auth=false.
func (h *handler) authenticate(r *http.Request) (user, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		return user{name: c.Subject.CommonName, groups: append(slices.Clone(c.Subject.Organization), "system:authenticated")}, true
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		h.st.mu.Lock()
		name, known := h.st.tokens[token]
		h.st.mu.Unlock()
		return user{name: name, groups: []string{"system:serviceaccounts", "system:authenticated"}}, known
	}
	if cluster.AnonymousAuth(h.b.currentArgs()) == "off" {
		return user{}, false
	}
	return anonymous, true
}

// authorize is the default RBAC policy's part that the lab meets
// (system:public-info-viewer, system:discovery) plus the ClusterRoles bound
// by the ClusterRoleBindings applied.
func (st *state) authorize(u user, q request) bool {
	if slices.Contains(u.groups, "system:masters") {
		return true
	}
	if !q.isRes && q.verb == "get" {
		switch {
		case slices.Contains([]string{"/healthz", "/livez", "/readyz", "/version"}, q.path):
			return true
		case slices.Contains(u.groups, "system:authenticated") && (q.path == "/api" || q.path == "/apis" || strings.HasPrefix(q.path, "/api/") || strings.HasPrefix(q.path, "/apis/")):
			return true
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, data := range st.objects {
		var crb rbacv1.ClusterRoleBinding
		if k.resource != "clusterrolebindings" || json.Unmarshal(data, &crb) != nil || !binds(crb.Subjects, u) {
			continue
		}
		var role rbacv1.ClusterRole
		if json.Unmarshal(st.objects[objectKey{resource: "clusterroles", name: crb.RoleRef.Name}], &role) != nil {
			continue
		}
		for _, rule := range role.Rules {
			if allows(rule, q) {
				return true
			}
		}
	}
	return false
}

func binds(subjects []rbacv1.Subject, u user) bool {
	for _, s := range subjects {
		switch {
		case s.Kind == rbacv1.UserKind && s.Name == u.name,
			s.Kind == rbacv1.GroupKind && slices.Contains(u.groups, s.Name),
			s.Kind == rbacv1.ServiceAccountKind && "system:serviceaccount:"+s.Namespace+":"+s.Name == u.name:
			return true
		}
	}
	return false
}

func allows(rule rbacv1.PolicyRule, q request) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	if !has(rule.Verbs, q.verb) {
		return false
	}
	if !q.isRes {
		for _, u := range rule.NonResourceURLs {
			if u == q.path || strings.HasSuffix(u, "*") && strings.HasPrefix(q.path, strings.TrimSuffix(u, "*")) {
				return true
			}
		}
		return false
	}
	resource := q.resource
	if q.sub != "" {
		resource += "/" + q.sub
	}
	return has(rule.APIGroups, q.group) && has(rule.Resources, resource) &&
		(len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, q.name))
}

// forbidden is kube-apiserver's 403, message included.
func forbidden(u user, q request) *apierrors.StatusError {
	if !q.isRes {
		return apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("User %q cannot %s path %q", u.name, q.verb, q.path)) //nolint:staticcheck // kube-apiserver's own message, capital included
	}
	resource := q.resource
	if q.sub != "" {
		resource += "/" + q.sub
	}
	scope := "at the cluster scope"
	if q.namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", q.namespace)
	}
	return apierrors.NewForbidden(q.groupResource(), q.name, fmt.Errorf("User %q cannot %s resource %q in API group %q %s", u.name, q.verb, resource, q.group, scope)) //nolint:staticcheck // kube-apiserver's own message, capital included
}

func notFound() *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound,
		Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{}}}
}

func methodNotAllowed(q request) *apierrors.StatusError {
	return apierrors.NewMethodNotSupported(q.groupResource(), q.verb)
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	s := err.ErrStatus
	s.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, int(s.Code), s)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func (h *handler) nonResource(w http.ResponseWriter, r *http.Request, q request) {
	if q.verb != "get" {
		writeStatus(w, notFound())
		return
	}
	switch q.path {
	case "/healthz", "/livez", "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	case "/version":
		v := cluster.DefaultKubernetesVersion
		major, minor, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
		minor, _, _ = strings.Cut(minor, ".")
		writeJSON(w, http.StatusOK, version.Info{Major: major, Minor: minor, GitVersion: v})
	case "/api":
		writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case "/apis":
		gv := metav1.GroupVersionForDiscovery{GroupVersion: rbacGroup + "/v1", Version: "v1"}
		writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups: []metav1.APIGroup{{Name: rbacGroup, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}}})
	case "/api/v1":
		writeJSON(w, http.StatusOK, resourceList("v1",
			metav1.APIResource{Name: "namespaces", Kind: "Namespace", Verbs: []string{"get", "list"}},
			metav1.APIResource{Name: "serviceaccounts", Namespaced: true, Kind: "ServiceAccount", Verbs: []string{"create", "get"}},
			metav1.APIResource{Name: "serviceaccounts/token", Namespaced: true, Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest", Verbs: []string{"create"}}))
	case "/apis/" + rbacGroup + "/v1":
		verbs := []string{"delete", "get", "patch"}
		writeJSON(w, http.StatusOK, resourceList(rbacGroup+"/v1",
			metav1.APIResource{Name: "clusterrolebindings", Kind: "ClusterRoleBinding", Verbs: verbs},
			metav1.APIResource{Name: "clusterroles", Kind: "ClusterRole", Verbs: verbs}))
	default:
		writeStatus(w, notFound())
	}
}

func resourceList(gv string, resources ...metav1.APIResource) metav1.APIResourceList {
	return metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: resources}
}

// builtinNamespaces are the namespaces kube-apiserver makes itself.
var builtinNamespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

func (h *handler) namespace(name string) corev1.Namespace {
	return corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(h.st.created), Labels: map[string]string{"kubernetes.io/metadata.name": name}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
}

func (h *handler) namespaces(w http.ResponseWriter, q request) {
	switch {
	case q.verb == "list":
		list := corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"}}
		for _, name := range builtinNamespaces {
			list.Items = append(list.Items, h.namespace(name))
		}
		writeJSON(w, http.StatusOK, list)
	case q.verb == "get" && q.sub == "":
		if !slices.Contains(builtinNamespaces, q.name) {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			return
		}
		ns := h.namespace(q.name)
		ns.TypeMeta = metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}
		writeJSON(w, http.StatusOK, ns)
	default:
		writeStatus(w, methodNotAllowed(q))
	}
}

// serviceAccounts serves the ServiceAccount GET and create, and the
// TokenRequest, that the serviceAccountToken step sends. No ServiceAccount
// exists at first: no controller makes the default one (unless
// RacingServiceAccountController).
func (h *handler) serviceAccounts(w http.ResponseWriter, r *http.Request, q request) {
	key := objectKey{resource: "serviceaccounts", namespace: q.namespace, name: q.name}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	switch {
	case q.verb == "get" && q.sub == "":
		if !h.st.serviceAccounts[key] {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			h.st.serviceAccounts[key] = h.b.opts.saRace
			return
		}
		writeJSON(w, http.StatusOK, h.serviceAccount(key))
	case q.verb == "create" && q.name == "":
		sa, err := decodeServiceAccount(r.Body)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		key.name = sa.Name
		if h.st.serviceAccounts[key] {
			writeStatus(w, apierrors.NewAlreadyExists(q.groupResource(), sa.Name))
			return
		}
		h.st.serviceAccounts[key] = true
		writeJSON(w, http.StatusCreated, h.serviceAccount(key))
	case q.verb == "create" && q.sub == "token":
		if !h.st.serviceAccounts[key] {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			return
		}
		token, err := randomToken()
		if err != nil {
			writeStatus(w, apierrors.NewInternalError(err))
			return
		}
		h.st.tokens[token] = "system:serviceaccount:" + q.namespace + ":" + q.name
		h.b.recordToken(token)
		expires := int64(3600)
		writeJSON(w, http.StatusCreated, authenticationv1.TokenRequest{
			TypeMeta:   metav1.TypeMeta{Kind: "TokenRequest", APIVersion: "authentication.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: q.name, Namespace: q.namespace},
			Spec:       authenticationv1.TokenRequestSpec{Audiences: []string{"https://kubernetes.default.svc.cluster.local"}, ExpirationSeconds: &expires},
			Status:     authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(h.st.now().Add(time.Hour))},
		})
	default:
		writeStatus(w, methodNotAllowed(q))
	}
}

// decodeServiceAccount reads a ServiceAccount in any of the encodings
// client-go sends (its typed clients prefer protobuf).
func decodeServiceAccount(body io.Reader) (*corev1.ServiceAccount, error) {
	data, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the ServiceAccount: %w", err)
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode the ServiceAccount: %w", err)
	}
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || sa.Name == "" {
		return nil, fmt.Errorf("decode the ServiceAccount: got a %T without a name", obj)
	}
	return sa, nil
}

func (h *handler) serviceAccount(k objectKey) corev1.ServiceAccount {
	return corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{Kind: "ServiceAccount", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: k.name, Namespace: k.namespace, CreationTimestamp: metav1.NewTime(h.st.created)}}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var kinds = map[string]string{"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding"}

// rbacObject serves server-side apply, GET and DELETE of ClusterRoles and
// ClusterRoleBindings.
func (h *handler) rbacObject(w http.ResponseWriter, r *http.Request, q request) {
	key := objectKey{resource: q.resource, name: q.name}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	stored, exists := h.st.objects[key]
	switch q.verb {
	case "get":
		if !exists {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(stored)
	case "patch":
		if r.Header.Get("Content-Type") != "application/apply-patch+yaml" {
			writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType,
				Reason: metav1.StatusReasonUnsupportedMediaType, Message: "the fake takes server-side apply only (application/apply-patch+yaml)"}})
			return
		}
		obj, err := decodeObject(r.Body, kinds[q.resource], q.name, stored)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		h.st.objects[key] = obj
		code := http.StatusCreated
		if exists {
			code = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(obj)
	case "delete":
		if !exists {
			writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
			return
		}
		delete(h.st.objects, key)
		writeJSON(w, http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: q.name, Group: q.group, Kind: q.resource}})
	default:
		writeStatus(w, methodNotAllowed(q))
	}
}

// rbacList lists the applied objects of a kind (no Roles or RoleBindings
// are ever stored).
func (h *handler) rbacList(w http.ResponseWriter, q request) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	var items []json.RawMessage
	for k, data := range h.st.objects {
		if k.resource == q.resource {
			items = append(items, data)
		}
	}
	kind, ok := kinds[q.resource]
	if !ok {
		kind = map[string]string{"roles": "Role", "rolebindings": "RoleBinding"}[q.resource]
	}
	if kind == "" {
		writeStatus(w, notFound())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": kind + "List", "apiVersion": rbacGroup + "/v1", "metadata": map[string]any{}, "items": items})
}

// accessReview answers a SubjectAccessReview with the same authorizer as
// the requests.
func (h *handler) accessReview(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest("read the SubjectAccessReview: "+err.Error()))
		return
	}
	// client-go may send protobuf: decode as kube-apiserver would.
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	sar, ok := obj.(*authorizationv1.SubjectAccessReview)
	if err != nil || !ok {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("decode the SubjectAccessReview: %v (%T)", err, obj)))
		return
	}
	u := user{name: sar.Spec.User, groups: sar.Spec.Groups}
	var q request
	switch a := sar.Spec; {
	case a.NonResourceAttributes != nil:
		q = request{path: a.NonResourceAttributes.Path, verb: a.NonResourceAttributes.Verb}
	case a.ResourceAttributes != nil:
		ra := a.ResourceAttributes
		q = request{isRes: true, verb: ra.Verb, group: ra.Group, resource: ra.Resource, sub: ra.Subresource, namespace: ra.Namespace, name: ra.Name}
	}
	sar.Status.Allowed = h.st.authorize(u, q)
	writeJSON(w, http.StatusCreated, sar)
}

// decodeObject reads an applied object (YAML or JSON), checks that it is
// the one the path names, and gives it a UID (the stored object's, when it
// replaces one).
func decodeObject(body io.Reader, kind, name string, stored []byte) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the object: %w", err)
	}
	data, err = utilyaml.ToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("decode the object: %w", err)
	}
	var meta metav1.PartialObjectMetadata
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("decode the object: %w", err)
	}
	if meta.Kind != kind || meta.Name != name {
		return nil, errors.New("the object's kind and name must be those of the path")
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("decode the object: %w", err)
	}
	var was metav1.PartialObjectMetadata
	uid := string(uuid.NewUUID())
	if stored != nil && json.Unmarshal(stored, &was) == nil && was.UID != "" {
		uid = string(was.UID)
	}
	obj["metadata"].(map[string]any)["uid"] = uid
	return json.Marshal(obj)
}
