package kind

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/anonlab/anonlab/steps/audit"
	"github.com/anonlab/anonlab/steps/cluster"
)

// observeWithin bounds the wait for one observation: far above the budget
// (1 s on kind), so that a loaded machine does not fail the test; the
// latency itself is logged, and BenchmarkKind holds it to the budget.
const observeWithin = 10 * time.Second

// TestHandsOnOnKind is what hands-on mode relies on, on a real kind
// cluster: kube-apiserver's audit log, read on the host, explains an
// anonymous request (403: system:anonymous, forbid); the commands
// DescribeChange shows turn anonymous requests off when run verbatim in
// bash with the variables `anonlab env` exports; ServingAPIServer sees the
// new kube-apiserver; and the log explains the next anonymous request (401,
// no user). It reports the kubelet's probes that the change makes fail.
// RestoreAPIServer then restores the manifest from the backup made by hand.
func TestHandsOnOnKind(t *testing.T) {
	rt, image := RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctx = cluster.WithProgress(ctx, func(p cluster.Progress) {
		if p.Done || strings.HasPrefix(p.Detail, "warning") {
			t.Logf("[%s %s] %s", p.Phase, p.Elapsed.Round(time.Millisecond), p.Detail)
		}
	})
	b := New(WithRuntime(rt), WithNodeImage(image))
	t.Cleanup(func() {
		if err := b.Destroy(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	info := b.Info()
	if info.APIServerManifest != manifestPath || info.Node != b.NodeName() || info.Node == "" || info.NodeExec != rt.Name+" exec" {
		t.Errorf("Info: manifest %q, node %q, exec %q; want %q, %q, %q", info.APIServerManifest, info.Node, info.NodeExec, manifestPath, b.NodeName(), rt.Name+" exec")
	}
	checkAuditFiles(t, b)
	original, err := b.APIServerArgs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	obs, tail, err := followLab(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	var probes []audit.Observation
	keepProbe := func(o audit.Observation) {
		if strings.HasPrefix(o.UserAgent, "kube-probe/") && o.Code == http.StatusUnauthorized {
			probes = append(probes, o)
		}
	}
	anonymous := anonymousClient(t, info)
	observe := func(name string, want int) (audit.Observation, time.Duration) {
		t.Helper()
		code, o, took, err := sendObserved(ctx, anonymous, info.URL, name, obs, keepProbe)
		if err != nil {
			t.Fatalf("%v (tail: %v)", err, tail.Err())
		}
		if code != want {
			t.Errorf("anonymous GET /api = %d, want %d", code, want)
		}
		return o, took
	}

	var latencies []time.Duration
	for i := range 5 {
		o, took := observe("anonymous-api-"+strconv.Itoa(i+1), http.StatusForbidden)
		latencies = append(latencies, took)
		if o.User != "system:anonymous" || !slices.Equal(o.Groups, []string{"system:unauthenticated"}) || o.Decision != audit.Forbid || o.Code != http.StatusForbidden {
			t.Errorf("observed %+v; want system:anonymous (system:unauthenticated), forbid, 403", o)
		}
	}
	t.Logf("403: request sent → observation received: %v (slowest %s; budget 1s)", latencies, slices.Max(latencies))

	change := cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}
	script := b.DescribeChange(change)
	manifests, err := filepath.Abs(filepath.Join("..", "..", "..", "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "NODE="+info.Node, "KUBE_APISERVER_MANIFEST="+info.APIServerManifest, "MANIFESTS="+manifests)
	edited := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the commands shown failed: %v\n%s\n--- commands:\n%s", err, out, script)
	}
	t.Logf("ran in bash:\n%s", script)
	if _, err := b.readNode(ctx, backupPath); err != nil {
		t.Errorf("no backup after the commands shown: %v", err)
	}

	var args []string
	var startErrors []string
	looks := 0
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		var startError string
		var err error
		looks++
		args, startError, err = b.ServingAPIServer(ctx)
		if startError != "" {
			startErrors = append(startErrors, startError)
		}
		return args != nil, err
	})
	if err != nil {
		t.Fatalf("ServingAPIServer after the edit: %v (last args %q)", err, args)
	}
	t.Logf("ServingAPIServer saw the new kube-apiserver %s after the edit, in %d looks", time.Since(edited).Round(time.Millisecond), looks)
	if cluster.AnonymousAuth(args) != "off" {
		t.Errorf("ServingAPIServer = %q, want --anonymous-auth=false", args)
	}
	if len(startErrors) > 0 {
		t.Errorf("ServingAPIServer reported start errors for a change that starts: %q", startErrors)
	}

	o, took := observe("anonymous-off", http.StatusUnauthorized)
	t.Logf("401: request sent → observation received: %s", took)
	if o.User != "" || len(o.Groups) > 0 || o.Code != http.StatusUnauthorized || o.StatusReason != "Unauthorized" || o.Decision != "" {
		t.Errorf("observed %+v; want no user, 401 Unauthorized, no decision", o)
	}

	// The kubelet's startup probe (GET /livez every 10 s) has no
	// credentials either; report what it looks like, and when.
	first, err := audit.Find(ctx, obs, func(o audit.Observation) bool {
		return strings.HasPrefix(o.UserAgent, "kube-probe/") && o.Code == http.StatusUnauthorized
	}, time.Minute, keepProbe)
	if err == nil {
		probes = append(probes, first)
	}
	if len(probes) == 0 {
		t.Logf("no kube-probe 401 observed within a minute of the 401 request (%v)", err)
	}
	for _, p := range probes {
		t.Logf("kube-probe observation %s after the edit: %s %s %s %d %s, user %q, decision %q",
			p.Time.Sub(edited).Round(time.Millisecond), p.UserAgent, p.Verb, p.Path, p.Code, p.StatusReason, p.User, p.Decision)
	}
	checkAuditFiles(t, b)

	// The lab puts the manifest back from the backup made by hand.
	if err := b.RestoreAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if args, err := b.APIServerArgs(ctx); err != nil || !slices.Equal(args, original) {
		t.Errorf("APIServerArgs after restore = %q, %v; want %q", args, err, original)
	}
	if _, err := b.readNode(ctx, backupPath); err == nil {
		t.Errorf("%s is still in the node after restore", backupPath)
	}
	observe("anonymous-restored", http.StatusForbidden)
}

// checkAuditFiles checks that the audit log on the host is the lab's own
// user's, readable by no one else, though kube-apiserver writes it as root.
func checkAuditFiles(t *testing.T, b *Backend) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{filepath.Dir(b.AuditLogPath()): 0o700 | os.ModeDir, b.AuditLogPath(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || !ok || int(st.Uid) != os.Getuid() {
			t.Errorf("%s: mode %v, owner %v; want %v, uid %d", path, fi.Mode(), fi.Sys(), mode, os.Getuid())
		}
	}
}

// followLab follows the backend's audit log and passes on the observations
// of the requests sendObserved sends and of the kubelet's probes. The rest
// of the cluster's traffic is read as it comes, so that no backlog adds to
// a latency.
func followLab(ctx context.Context, b *Backend) (<-chan audit.Observation, *audit.Tail, error) {
	tail, err := audit.Follow(ctx, b.AuditLogPath())
	if err != nil {
		return nil, nil, err
	}
	obs := make(chan audit.Observation, 1024)
	go func() {
		defer close(obs)
		for o := range tail.C() {
			if strings.HasPrefix(o.UserAgent, audit.UserAgent(testRun, "")) || strings.HasPrefix(o.UserAgent, "kube-probe/") {
				obs <- o
			}
		}
	}()
	return obs, tail, nil
}

// testRun is the run id in the User-Agent of the requests the tests send.
const testRun = "kindtest"

// sendObserved sends GET /api with client, as step name, and finds its
// observation in obs. took is from sending the request to receiving the
// observation; the others received meanwhile go to skipped.
func sendObserved(ctx context.Context, client *http.Client, url, name string, obs <-chan audit.Observation, skipped func(audit.Observation)) (code int, o audit.Observation, took time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api", nil)
	if err != nil {
		return 0, o, 0, err
	}
	ua := audit.UserAgent(testRun, name)
	req.Header.Set("User-Agent", ua)
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, o, 0, fmt.Errorf("%s: GET /api: %w", name, err)
	}
	resp.Body.Close()
	o, err = audit.Find(ctx, obs, audit.SentWith(ua), observeWithin, skipped)
	if err != nil {
		return resp.StatusCode, o, 0, fmt.Errorf("%s: %w", name, err)
	}
	return resp.StatusCode, o, time.Since(sent), nil
}
