package kind

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

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

func anonymousClient(t testing.TB, info cluster.Info) *http.Client {
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

// TestCreateInterrupted cancels Create as a Ctrl-C does, at fixed times and
// in given phases: Create returns within 10 s of the cancel, with
// context.Canceled, and leaves no container, kind cluster, ledger entry or
// directory.
func TestCreateInterrupted(t *testing.T) {
	rt, image := RequireKind(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	named := regexp.MustCompile(`^creating kind cluster (\S+) from`)
	cases := []struct {
		name  string
		after time.Duration // cancel this long after kind began to create
		on    string        // or when a progress report says this
	}{
		{name: "2s in", after: 2 * time.Second},
		{name: "15s in", after: 15 * time.Second},
		{name: "starting the control plane", on: "Starting control-plane"},
		{name: "waiting for the node", on: "to be Ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where the backend makes its directory
			var (
				mu        sync.Mutex
				cancelled time.Time
				phase     string   // the last report before the cancel
				after     []string // the reports after it
				name      string
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := func() {
				mu.Lock()
				defer mu.Unlock()
				if cancelled.IsZero() {
					cancelled = time.Now()
					cancel()
				}
			}
			ctx = cluster.WithProgress(ctx, func(p cluster.Progress) {
				mu.Lock()
				if m := named.FindStringSubmatch(p.Detail); m != nil {
					name = m[1]
					if tc.after > 0 {
						timer := time.AfterFunc(tc.after, stop)
						t.Cleanup(func() { timer.Stop() })
					}
				}
				if cancelled.IsZero() {
					phase = p.Detail
				} else {
					after = append(after, fmt.Sprintf("+%s %s", time.Since(cancelled).Round(time.Millisecond), p.Detail))
				}
				mu.Unlock()
				if tc.on != "" && strings.Contains(p.Detail, tc.on) {
					stop()
				}
			})
			b := New(WithRuntime(rt), WithNodeImage(image))
			t.Cleanup(func() { _ = b.Destroy(context.Background()) })
			began := time.Now()
			err := b.Create(ctx)
			returned := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if name == "" {
				t.Fatalf("Create did not name its cluster (err %v)", err)
			}
			t.Cleanup(func() {
				if len(Containers(t, rt, name+"-")) > 0 {
					_ = DeleteCluster(context.Background(), name)
				}
			})
			if cancelled.IsZero() {
				t.Fatalf("Create returned (%v) before the cancel", err)
			}
			took := returned.Sub(cancelled)
			t.Logf("cancelled %s into Create (last report: %q); Create returned %s later: %v\n%s",
				cancelled.Sub(began).Round(time.Millisecond), phase, took.Round(time.Millisecond), err, strings.Join(after, "\n"))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Create = %v, want context.Canceled", err)
			}
			if took > 10*time.Second {
				t.Errorf("Create returned %s after the cancel, want ≤ 10s", took.Round(time.Millisecond))
			}
			if got := Containers(t, rt, name+"-"); len(got) > 0 {
				t.Errorf("containers of %s left: %q", name, got)
			}
			clusters, err := kindcluster.NewProvider(rt.providerOption()).List()
			if err != nil || slices.Contains(clusters, name) {
				t.Errorf("kind clusters after the cancel: %q, %v; want no %s", clusters, err, name)
			}
			if entries, err := ledger.List(); err != nil || len(entries) > 0 {
				t.Errorf("ledger after the cancel: %+v, %v", entries, err)
			}
			if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
				t.Errorf("left in the temporary directory: %v, %v", left, err)
			}
		})
	}
}
