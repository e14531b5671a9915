package kind

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// RequireKind returns the engine and node image the real-cluster tests
// use: $ANONLAB_NODE_IMAGE, else the image `make kind-node-image` built for
// the default Kubernetes version, else kind's default, if the engine has
// it. Under CI=true a machine without them fails the test, with the
// reason; elsewhere, and with -short, the test is skipped with it.
func RequireKind(tb testing.TB) (Runtime, string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("creates a kind cluster: run without -short (make test-kind)")
	}
	ctx := context.Background()
	rt, err := Detect(ctx)
	if err == nil {
		image := os.Getenv("ANONLAB_NODE_IMAGE")
		if image == "" {
			image = rt.NodeImageFor(ctx, cluster.DefaultKubernetesVersion)
		}
		if rt.HasImage(ctx, image) {
			return rt, image
		}
		err = fmt.Errorf("node image %s is not in %s: run make kind-node-image (no registry needed)", image, rt.Name)
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("the kind backend cannot be tested on this machine: %v", err)
	}
	tb.Skipf("skipped (under CI=true this fails): %v", err)
	return Runtime{}, ""
}

// Containers lists the containers, running or not, whose name starts with
// prefix.
func Containers(tb testing.TB, rt Runtime, prefix string) []string {
	tb.Helper()
	out, err := exec.Command(rt.Name, "ps", "--all", "--filter", "name=^"+prefix, "--format", "{{.Names}}").Output()
	if err != nil {
		tb.Fatalf("list containers: %v", err)
	}
	return strings.Fields(string(out))
}

// TestBackend walks the backend through what the article does on a real
// kind cluster: create, --anonymous-auth=false by a manifest edit, a change
// the apiserver refuses (rolled back, with its error line), restore from
// the backup, delete.
func TestBackend(t *testing.T) {
	rt, image := RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctx = cluster.WithProgress(ctx, func(p cluster.Progress) {
		if p.Done || strings.HasPrefix(p.Detail, "warning") {
			t.Logf("[%s %s] %s", p.Phase, p.Elapsed.Round(time.Millisecond), p.Detail)
		}
	})
	b := New(WithRuntime(rt), WithNodeImage(image))
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			if err := b.Destroy(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	start := time.Now()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster %s created in %s", b.ClusterName(), time.Since(start).Round(time.Millisecond))

	info := b.Info()
	if !strings.HasPrefix(b.ClusterName(), ClusterPrefix) || !info.CreatedByLab || info.AdminName != "kubernetes-admin" ||
		!strings.HasPrefix(info.URL, "https://127.0.0.1:") || !strings.HasPrefix(info.KubernetesVersion, "v1.") {
		t.Errorf("cluster %s, info %+v", b.ClusterName(), info)
	}
	for path, mode := range map[string]os.FileMode{info.CAFile: 0o600, info.Kubeconfig: 0o600, b.dir: 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, mode)
		}
	}
	original, err := b.APIServerArgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	anonymous := anonymousClient(t, info)
	wantStatus(t, anonymous, info.URL, http.StatusForbidden)

	change := cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}
	if got := b.DescribeChange(change); !strings.Contains(got, "sed -i -e '/^    - kube-apiserver$/a\\    - --anonymous-auth=false' "+manifestPath) {
		t.Errorf("DescribeChange = %q", got)
	}
	if err := b.ReconfigureAPIServer(ctx, change); err != nil {
		t.Fatal(err)
	}
	swap := b.LastSwap()
	serving, err := b.APIServerServingSince(ctx)
	if err != nil {
		t.Error(err)
	}
	t.Logf("manifest edit → new container %s, first answer %s, serving %s; seen %s after it logged serving",
		swap.Started.Sub(swap.Edited).Round(time.Millisecond), swap.FirstAnswer.Sub(swap.Edited).Round(time.Millisecond),
		swap.Serving.Sub(swap.Edited).Round(time.Millisecond), swap.FirstAnswer.Sub(serving).Round(time.Millisecond))
	wantStatus(t, anonymous, info.URL, http.StatusUnauthorized)
	if args, err := b.APIServerArgs(ctx); err != nil || cluster.AnonymousAuth(args) != "off" {
		t.Errorf("APIServerArgs = %q, %v", args, err)
	}
	// The readiness probe has no credentials: the Pod turns NotReady.
	notReady := false
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && !notReady; {
		st, err := b.APIServerPod(ctx)
		notReady = err == nil && !st.Ready && st.Phase == "Running"
		if notReady {
			t.Logf("%+v", st)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if !notReady {
		t.Error("the kube-apiserver Pod did not turn NotReady after --anonymous-auth=false")
	}

	err = b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--no-such-flag=1"}})
	var rb *cluster.RollbackError
	if !errors.As(err, &rb) || !strings.Contains(rb.LastError, "unknown flag: --no-such-flag") {
		t.Fatalf("ReconfigureAPIServer with an unknown flag = %v", err)
	}
	t.Logf("rolled back: %v", err)
	wantStatus(t, anonymous, info.URL, http.StatusUnauthorized)

	if err := b.RestoreAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if args, err := b.APIServerArgs(ctx); err != nil || !slices.Equal(args, original) {
		t.Errorf("APIServerArgs after restore = %q, %v; want %q", args, err, original)
	}
	if _, err := b.readNode(ctx, backupPath); err == nil {
		t.Errorf("%s is still in the node after restore", backupPath)
	}
	wantStatus(t, anonymous, info.URL, http.StatusForbidden)

	name := b.ClusterName()
	if err := b.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if got := Containers(t, rt, name+"-"); len(got) > 0 {
		t.Errorf("containers of %s after Destroy: %q", name, got)
	}
	if _, err := os.Stat(info.Kubeconfig); !os.IsNotExist(err) {
		t.Errorf("%s remains after deleting %s: %v", info.Kubeconfig, name, err)
	}
	entries, err := ledger.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.KindCluster == name {
			t.Errorf("the run's record of %s remains: %+v", name, e)
		}
	}
}

func anonymousClient(t *testing.T, info cluster.Info) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(&rest.Config{Host: info.URL, TLSClientConfig: rest.TLSClientConfig{CAData: info.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantStatus(t *testing.T, c *http.Client, url string, want int) {
	t.Helper()
	resp, err := c.Get(url + "/api")
	if err != nil {
		t.Fatalf("anonymous GET /api: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("anonymous GET /api = %d, want %d", resp.StatusCode, want)
	}
}
