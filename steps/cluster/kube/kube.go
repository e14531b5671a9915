// Package kube is the Kubernetes API calls the lab makes on typed objects
// and discovery, through client-go's dynamic client and plain GETs of the
// discovery paths. client-go's typed clientset and discovery client link
// k8s.io/client-go/kubernetes/scheme, which registers every API group
// when the process starts: with them, every start of anonlab (--help
// included) took about twice kind's (docs/architecture.md, Budgets).
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Client reaches one cluster.
type Client struct {
	dyn  dynamic.Interface
	http *http.Client
	host string

	mu        sync.Mutex
	resources map[schema.GroupVersion]*metav1.APIResourceList
}

// New returns a client for cfg.
func New(cfg *rest.Config) (*Client, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, http: hc, host: strings.TrimSuffix(cfg.Host, "/"), resources: map[schema.GroupVersion]*metav1.APIResourceList{}}, nil
}

// Dynamic is the client's dynamic client.
func (c *Client) Dynamic() dynamic.Interface { return c.dyn }

// Resource is an API resource and the kind of its objects.
type Resource struct {
	schema.GroupVersionResource
	Kind string
}

// Resources the lab reads and writes as typed objects.
var (
	Namespaces           = Resource{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "Namespace"}
	Nodes                = Resource{schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "Node"}
	Pods                 = Resource{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"}
	Secrets              = Resource{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "Secret"}
	ServiceAccounts      = Resource{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "ServiceAccount"}
	ClusterRoles         = rbac("clusterroles", "ClusterRole")
	Roles                = rbac("roles", "Role")
	ClusterRoleBindings  = rbac("clusterrolebindings", "ClusterRoleBinding")
	RoleBindings         = rbac("rolebindings", "RoleBinding")
	SubjectAccessReviews = Resource{schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "subjectaccessreviews"}, "SubjectAccessReview"}
)

// tokenRequests is the kind of the body of a ServiceAccount's token
// subresource.
var tokenRequests = Resource{schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1"}, "TokenRequest"}

func rbac(resource, kind string) Resource {
	return Resource{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: resource}, kind}
}

func (c *Client) of(r Resource, namespace string) dynamic.ResourceInterface {
	if namespace != "" {
		return c.dyn.Resource(r.GroupVersionResource).Namespace(namespace)
	}
	return c.dyn.Resource(r.GroupVersionResource)
}

// Get reads the object namespace/name of r into a T.
func Get[T any](ctx context.Context, c *Client, r Resource, namespace, name string) (*T, error) {
	u, err := c.of(r, namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return into[T](u.Object)
}

// List lists r's objects in namespace (all when "") into a T, r's list
// type.
func List[T any](ctx context.Context, c *Client, r Resource, namespace string) (*T, error) {
	u, err := c.of(r, namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return into[T](u.UnstructuredContent())
}

// Create creates obj, an object of r, and returns what the server made of
// it.
func Create[T any](ctx context.Context, c *Client, r Resource, namespace string, obj *T, opts metav1.CreateOptions) (*T, error) {
	u, err := unstructuredOf(r, obj)
	if err != nil {
		return nil, err
	}
	made, err := c.of(r, namespace).Create(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	return into[T](made.Object)
}

// CreateToken requests a token for ServiceAccount namespace/name (the
// TokenRequest API, as kubectl create token does).
func CreateToken(ctx context.Context, c *Client, namespace, name string) (*authenticationv1.TokenRequest, error) {
	u, err := unstructuredOf(tokenRequests, &authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil {
		return nil, err
	}
	made, err := c.of(ServiceAccounts, namespace).Create(ctx, u, metav1.CreateOptions{}, "token")
	if err != nil {
		return nil, err
	}
	return into[authenticationv1.TokenRequest](made.Object)
}

func unstructuredOf(r Resource, obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(r.GroupVersion().String())
	u.SetKind(r.Kind)
	return u, nil
}

func into[T any](m map[string]any) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, out); err != nil {
		return nil, err
	}
	return out, nil
}

// getJSON GETs path and decodes its JSON answer into out.
func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.host+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

// ServerVersion is what GET /version says.
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	var v version.Info
	return &v, c.getJSON(ctx, "/version", &v)
}

// RootPaths are the paths GET / lists.
func (c *Client) RootPaths(ctx context.Context) ([]string, error) {
	var root metav1.RootPaths
	return root.Paths, c.getJSON(ctx, "/", &root)
}

// groupVersionResources reads (once; again when reread) the resources of
// gv.
func (c *Client) groupVersionResources(ctx context.Context, gv schema.GroupVersion, reread bool) (*metav1.APIResourceList, error) {
	c.mu.Lock()
	list, ok := c.resources[gv]
	c.mu.Unlock()
	if ok && !reread {
		return list, nil
	}
	path := "/apis/" + gv.String()
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	list = &metav1.APIResourceList{}
	if err := c.getJSON(ctx, path, list); err != nil {
		return nil, err
	}
	list.GroupVersion = gv.String()
	c.mu.Lock()
	c.resources[gv] = list
	c.mu.Unlock()
	return list, nil
}

// GroupDiscoveryFailed says which API groups did not answer discovery;
// the resources of the others come with it.
type GroupDiscoveryFailed map[schema.GroupVersion]error

func (e GroupDiscoveryFailed) Error() string {
	var parts []string
	for gv, err := range e {
		parts = append(parts, gv.String()+": "+err.Error())
	}
	return "unable to retrieve the complete list of server APIs: " + strings.Join(parts, ", ")
}

// PreferredResources are the resources (not subresources) of each API
// group, each in its group's preferred version or, when that one does not
// serve it, in the first version that does, as client-go's
// ServerPreferredResources lists them (TestAgainstClientGo). Group
// versions that do not answer are left out and named in a
// GroupDiscoveryFailed.
func (c *Client) PreferredResources(ctx context.Context) ([]*metav1.APIResourceList, error) {
	var groups metav1.APIGroupList
	if err := c.getJSON(ctx, "/apis", &groups); err != nil {
		return nil, err
	}
	core := metav1.APIGroup{Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: "v1", Version: "v1"}}}
	core.PreferredVersion = core.Versions[0]
	var out []*metav1.APIResourceList
	failed := GroupDiscoveryFailed{}
	for _, g := range append([]metav1.APIGroup{core}, groups.Groups...) {
		chosen := map[string]bool{} // resource names already listed for g
		// The preferred version first, then the others in the server's
		// order.
		versions := []string{g.PreferredVersion.Version}
		for _, v := range g.Versions {
			if v.Version != g.PreferredVersion.Version {
				versions = append(versions, v.Version)
			}
		}
		for _, v := range versions {
			gv := schema.GroupVersion{Group: g.Name, Version: v}
			list, err := c.groupVersionResources(ctx, gv, true)
			if err != nil {
				failed[gv] = err
				continue
			}
			kept := &metav1.APIResourceList{GroupVersion: list.GroupVersion}
			for _, r := range list.APIResources {
				if !chosen[r.Name] && !strings.Contains(r.Name, "/") { // no subresources
					chosen[r.Name] = true
					kept.APIResources = append(kept.APIResources, r)
				}
			}
			if len(kept.APIResources) > 0 {
				out = append(out, kept)
			}
		}
	}
	if len(failed) > 0 {
		return out, failed
	}
	return out, nil
}

// Mapping is the resource of gvk's objects and whether they live in a
// namespace. A kind its group version did not list is looked up again
// once (a CRD applied since).
func (c *Client) Mapping(ctx context.Context, gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	for _, reread := range []bool{false, true} {
		list, err := c.groupVersionResources(ctx, gvk.GroupVersion(), reread)
		if err != nil {
			return schema.GroupVersionResource{}, false, err
		}
		for _, r := range list.APIResources {
			if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
				return gvk.GroupVersion().WithResource(r.Name), r.Namespaced, nil
			}
		}
	}
	return schema.GroupVersionResource{}, false, fmt.Errorf("no resource of kind %s in %s", gvk.Kind, gvk.GroupVersion())
}
