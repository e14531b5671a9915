package kube_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/anonlab/anonlab/steps/cluster/kube"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// TestAgainstClientGo reads and writes on a real kube-apiserver through
// kube and through client-go's typed clientset and discovery client, which
// kube stands in for in the binary, and wants the same answers.
func TestAgainstClientGo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd and kube-apiserver: run without -short (make test does)")
	}
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	ctx := context.Background()
	b := local.New()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Destroy(context.WithoutCancel(ctx)) })
	c, err := kube.New(b.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(b.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	dc := cs.Discovery()

	t.Run("version and root paths", func(t *testing.T) {
		got, err := c.ServerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := dc.ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if *got != *want {
			t.Errorf("ServerVersion = %+v, client-go %+v", got, want)
		}
		paths, err := c.RootPaths(ctx)
		if err != nil || !slices.Contains(paths, "/api") || !slices.Contains(paths, "/livez") {
			t.Errorf("RootPaths = %v, %v; want /api and /livez among them", paths, err)
		}
	})

	t.Run("preferred resources", func(t *testing.T) {
		got, err := c.PreferredResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := dc.ServerPreferredResources()
		if err != nil {
			t.Fatal(err)
		}
		if g, w := flatten(got), flatten(want); !slices.Equal(g, w) {
			t.Errorf("PreferredResources differs from client-go's ServerPreferredResources:\nkube:      %d %v\nclient-go: %d %v", len(g), g, len(w), w)
		}
	})

	t.Run("mapping", func(t *testing.T) {
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
		for _, gvk := range []schema.GroupVersionKind{
			{Version: "v1", Kind: "ServiceAccount"}, {Version: "v1", Kind: "Namespace"},
			{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"},
			{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
			{Group: "apps", Version: "v1", Kind: "Deployment"},
		} {
			gvr, namespaced, err := c.Mapping(ctx, gvk)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatal(err)
			}
			if gvr != m.Resource || namespaced != (m.Scope.Name() == "namespace") {
				t.Errorf("Mapping(%s) = %s namespaced %v; client-go %s %s", gvk, gvr, namespaced, m.Resource, m.Scope.Name())
			}
		}
		if _, _, err := c.Mapping(ctx, schema.GroupVersionKind{Version: "v1", Kind: "NoSuchKind"}); err == nil {
			t.Error("Mapping of an unknown kind: no error")
		}
	})

	t.Run("typed objects", func(t *testing.T) {
		ns, err := kube.Get[corev1.Namespace](ctx, c, kube.Namespaces, "", "kube-system")
		if err != nil {
			t.Fatal(err)
		}
		want, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
		if err != nil || ns.UID != want.UID || ns.UID == "" {
			t.Errorf("kube-system UID %q, client-go %q (%v)", ns.UID, want.UID, err)
		}
		crs, err := kube.List[rbacv1.ClusterRoleList](ctx, c, kube.ClusterRoles, "")
		if err != nil {
			t.Fatal(err)
		}
		wantCRs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil || len(crs.Items) != len(wantCRs.Items) || len(crs.Items) == 0 {
			t.Errorf("%d ClusterRoles, client-go %d (%v)", len(crs.Items), len(wantCRs.Items), err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-test", Namespace: "default"}}
		made, err := kube.Create(ctx, c, kube.ServiceAccounts, "default", sa, metav1.CreateOptions{})
		if err != nil || made.UID == "" {
			t.Fatalf("create ServiceAccount: %+v, %v", made, err)
		}
		tr, err := kube.CreateToken(ctx, c, "default", "kube-test")
		if err != nil || strings.Count(tr.Status.Token, ".") != 2 || tr.Status.ExpirationTimestamp.IsZero() {
			t.Errorf("CreateToken: %+v, %v; want a JWT and its expiry", tr, err)
		}
		sar, err := kube.Create(ctx, c, kube.SubjectAccessReviews, "", &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:anonymous", Groups: []string{"system:unauthenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/version", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil || !sar.Status.Allowed {
			t.Errorf("SubjectAccessReview of anonymous GET /version: %+v, %v; want allowed", sar, err)
		}
	})
}

// flatten lists each resource as group/version/name namespaced verbs.
func flatten(lists []*metav1.APIResourceList) []string {
	var out []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			out = append(out, l.GroupVersion+"/"+r.Name+" "+strings.Join(r.Verbs, ",")+map[bool]string{true: " namespaced"}[r.Namespaced])
		}
	}
	slices.Sort(out)
	return out
}
