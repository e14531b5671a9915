package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// TestKubelet edits kube-apiserver's manifest on a real control plane, by
// the shown commands and by the engine's calls, one subtest after the
// other on one cluster; each leaves the original flags serving.
func TestKubelet(t *testing.T) {
	bin := RequireBinaries(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	b := New(WithBinariesDir(bin), WithReadyTimeout(30*time.Second))
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			_ = b.Destroy(context.Background())
		}
	})
	ctx := context.Background()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	manifest := b.Info().APIServerManifest
	if manifest != filepath.Join(b.Dir(), "manifests", "kube-apiserver.yaml") || b.Info().Node != "" || b.Info().NodeExec != "" {
		t.Fatalf("Info: manifest %q, node %q, exec %q", manifest, b.Info().Node, b.Info().NodeExec)
	}
	orig, err := b.APIServerArgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(manifest); err != nil {
		t.Fatal(err)
	} else if flags, err := staticpod.Flags(data); err != nil || !slices.Equal(flags, orig) {
		t.Fatalf("the manifest's flags %q (%v) are not those kube-apiserver runs with, %q", flags, err, orig)
	}
	anonymous, err := rest.HTTPClientFor(&rest.Config{Host: b.Info().URL, TLSClientConfig: rest.TLSClientConfig{CAData: b.Info().CAData}})
	if err != nil {
		t.Fatal(err)
	}
	restore := func(t *testing.T) {
		t.Helper()
		if err := b.RestoreAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if args, startErr := servingNow(t, b); !slices.Equal(args, orig) || startErr != "" {
			t.Fatalf("after RestoreAPIServer: serving %q, start error %q; want the original flags, no error", args, startErr)
		}
	}

	t.Run("the shown command restarts kube-apiserver", func(t *testing.T) {
		before := b.apiserver().Pid()
		cmd := b.DescribeChange(cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}})
		if strings.Contains(cmd, "kill") {
			t.Errorf("DescribeChange = %q: the kubelet restarts kube-apiserver, not the person", cmd)
		}
		edited := time.Now()
		runBash(t, cmd, "KUBE_APISERVER_MANIFEST="+manifest, "MANIFESTS="+t.TempDir())
		args := waitServing(t, b, func(args []string, _ string) bool { return slices.Contains(args, "--anonymous-auth=false") })
		t.Logf("kube-apiserver serves with the edited flags %s after the edit", time.Since(edited).Round(time.Millisecond))
		if want := append([]string{"--anonymous-auth=false"}, orig...); !slices.Equal(args, want) {
			t.Errorf("serving with %q, want %q", args, want)
		}
		if code := get(t, anonymous, b.Info().URL+"/api"); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET /api = %d, want 401", code)
		}
		after := b.apiserver().Pid()
		if after == before {
			t.Fatalf("kube-apiserver %d was not restarted", before)
		}
		// The old one drains beside the new one; the ledger names it until
		// it has exited.
		var pids []int
		for deadline := time.Now().Add(stopGrace); ; time.Sleep(20 * time.Millisecond) {
			entries, err := ledger.List()
			if err != nil || len(entries) != 1 {
				t.Fatalf("ledger: %v, %v", entries, err)
			}
			pids = pids[:0]
			for _, p := range entries[0].Processes {
				pids = append(pids, p.Pid)
			}
			if !slices.Contains(pids, before) || time.Now().After(deadline) {
				break
			}
		}
		if !slices.Contains(pids, after) || slices.Contains(pids, before) {
			t.Errorf("the ledger names processes %v; want the new kube-apiserver %d, not the old %d, once that one exited", pids, after, before)
		}
		restore(t)
	})

	t.Run("a refused flag shows kube-apiserver's error until the backup is back", func(t *testing.T) {
		data, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := staticpod.Edit(data, []string{"--anonymous-auth=maybe"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(manifest, bad, 0o600); err != nil { // in place, as an editor may
			t.Fatal(err)
		}
		waitServing(t, b, func(args []string, startErr string) bool { return args == nil && startErr != "" })
		_, startErr := servingNow(t, b)
		if want := `invalid argument "maybe" for "--anonymous-auth" flag`; !strings.Contains(startErr, want) {
			t.Errorf("start error %q, want kube-apiserver's own line with %q", startErr, want)
		}
		runBash(t, `cp "$BACKUP" "$KUBE_APISERVER_MANIFEST"`, "BACKUP="+b.backupPath(), "KUBE_APISERVER_MANIFEST="+manifest)
		waitServing(t, b, func(args []string, _ string) bool { return slices.Equal(args, orig) })
		if _, startErr := servingNow(t, b); startErr != "" {
			t.Errorf("start error %q once the original serves again", startErr)
		}
	})

	t.Run("a manifest that does not parse keeps kube-apiserver", func(t *testing.T) {
		before := b.apiserver().Pid()
		if err := os.WriteFile(manifest, []byte("spec: [\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := waitServing(t, b, func(_ []string, startErr string) bool { return startErr != "" })
		if _, startErr := servingNow(t, b); !strings.Contains(startErr, "parse the kube-apiserver manifest") {
			t.Errorf("start error %q, want the parse error", startErr)
		}
		if !slices.Equal(args, orig) || b.apiserver().Pid() != before {
			t.Errorf("serving %q (pid %d, was %d); want the same kube-apiserver", args, b.apiserver().Pid(), before)
		}
		restore(t)
	})

	t.Run("ReconfigureAPIServer rolls a refused flag back", func(t *testing.T) {
		err := b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=maybe"}})
		var rb *cluster.RollbackError
		if !errors.As(err, &rb) || !strings.Contains(rb.LastError, `invalid argument "maybe"`) {
			t.Fatalf("ReconfigureAPIServer = %v; want a RollbackError with kube-apiserver's line", err)
		}
		if args, startErr := servingNow(t, b); !slices.Equal(args, orig) || startErr != "" {
			t.Errorf("after the rollback: serving %q, start error %q; want the original flags", args, startErr)
		}
	})

	t.Run("ReconfigureAPIServer and RestoreAPIServer", func(t *testing.T) {
		began := time.Now()
		if err := b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}); err != nil {
			t.Fatal(err)
		}
		t.Logf("ReconfigureAPIServer took %s", time.Since(began).Round(time.Millisecond))
		if args, err := b.APIServerArgs(ctx); err != nil || !slices.Contains(args, "--anonymous-auth=false") {
			t.Errorf("APIServerArgs = %q, %v", args, err)
		}
		if code := get(t, anonymous, b.Info().URL+"/api"); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET /api = %d, want 401", code)
		}
		began = time.Now()
		restore(t)
		t.Logf("RestoreAPIServer took %s", time.Since(began).Round(time.Millisecond))
		if code := get(t, anonymous, b.Info().URL+"/api"); code != http.StatusForbidden {
			t.Errorf("anonymous GET /api = %d, want 403", code)
		}
	})

	t.Run("a restart with default RBAC unchanged does not wait for the bootstrap hooks, which then change nothing", func(t *testing.T) {
		before, err := b.bootstrapState(ctx)
		if err != nil || before == "" {
			t.Fatalf("bootstrapState = %q, %v; want the default RBAC and system priority classes", before, err)
		}
		if err := b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}); err != nil {
			t.Fatal(err)
		}
		if ready := servedBy(b); ready != readyzBootstrapped {
			t.Errorf("the new kube-apiserver served by %s, want %s", ready, readyzBootstrapped)
		}
		if code := get(t, anonymous, b.Info().URL+"/api"); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET /api = %d, want 401", code)
		}
		// Once the hooks have run, every object they own is as it was.
		waitReadyz(t, b)
		if after, err := b.bootstrapState(ctx); err != nil || after != before {
			t.Errorf("the bootstrap hooks changed their objects (%v):\n%s", err, lineDiff(before, after))
		}
		restore(t)
	})

	t.Run("a restart after a default binding was edited waits for the hook that puts it back", func(t *testing.T) {
		// system:public-info-viewer binds system:unauthenticated; without it
		// anonymous GET /version is 403 until the hook restores it.
		const path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:public-info-viewer"
		binding := getJSON(t, b, path)
		subjects := binding["subjects"].([]any)
		binding["subjects"] = slices.DeleteFunc(subjects, func(s any) bool { return s.(map[string]any)["name"] == "system:unauthenticated" })
		putJSON(t, b, path, binding)
		if code := get(t, anonymous, b.Info().URL+"/version"); code != http.StatusForbidden {
			t.Fatalf("anonymous GET /version = %d after the edit, want 403", code)
		}
		if err := b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--profiling=false"}}); err != nil {
			t.Fatal(err)
		}
		if ready := servedBy(b); ready != readyz {
			t.Errorf("the new kube-apiserver served by %s, want %s", ready, readyz)
		}
		if code := get(t, anonymous, b.Info().URL+"/version"); code != http.StatusOK {
			t.Errorf("anonymous GET /version = %d when the restart served, want 200: the hook had not put system:unauthenticated back", code)
		}
		restore(t)
		if ready := servedBy(b); ready != readyzBootstrapped {
			t.Errorf("the next restart served by %s, want %s: the hook's result is the new state", ready, readyzBootstrapped)
		}
	})

	t.Run("a restart with other feature gates waits for the bootstrap hooks", func(t *testing.T) {
		// Feature gates decide which default roles exist.
		if err := b.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--feature-gates=AllAlpha=false"}}); err != nil {
			t.Fatal(err)
		}
		if ready := servedBy(b); ready != readyz {
			t.Errorf("the new kube-apiserver served by %s, want %s", ready, readyz)
		}
		restore(t)
	})

	t.Run("an interrupted change", func(t *testing.T) {
		for _, rollback := range []bool{false, true} {
			cctx, cancel := context.WithCancel(ctx)
			// Interrupted while the kubelet waits for the new one.
			cctx = cluster.WithProgress(cctx, func(p cluster.Progress) {
				if strings.HasPrefix(p.Detail, "polling") {
					cancel()
				}
			})
			if !rollback {
				cctx = cluster.WithoutRollbackOnCancel(cctx)
			}
			err := b.ReconfigureAPIServer(cctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}})
			cancel()
			var rb *cluster.RollbackError
			switch {
			case !errors.Is(err, context.Canceled):
				t.Fatalf("rollback %v: ReconfigureAPIServer = %v, want it interrupted", rollback, err)
			case rollback != errors.As(err, &rb):
				t.Errorf("rollback %v: ReconfigureAPIServer = %v", rollback, err)
			}
			if rollback {
				if args, _ := servingNow(t, b); !slices.Equal(args, orig) {
					t.Errorf("after the rollback: serving %q, want the original flags", args)
				}
			} else {
				restore(t)
			}
		}
	})

	if err := b.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	select {
	case <-b.kubeletDone:
	default:
		t.Error("the kubelet still runs after Destroy")
	}
	if pids := b.Pids(); len(pids) != 0 {
		t.Errorf("processes %v run after Destroy", pids)
	}
}

// servingNow is ServingAPIServer, which must not fail.
func servingNow(t *testing.T, b *Backend) ([]string, string) {
	t.Helper()
	args, startErr, err := b.ServingAPIServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return args, startErr
}

// waitServing polls ServingAPIServer, as hands-on mode does, until done
// holds, and returns the serving flags then.
func waitServing(t *testing.T, b *Backend, done func(args []string, startErr string) bool) []string {
	t.Helper()
	var args []string
	var startErr string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		args, startErr, err = b.ServingAPIServer(ctx)
		return err == nil && done(args, startErr), err
	})
	if err != nil {
		t.Fatalf("ServingAPIServer: %v (last: serving %q, start error %q)", err, args, startErr)
	}
	return args
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyz polls kube-apiserver's whole /readyz until it answers 200.
func waitReadyz(t *testing.T, b *Backend) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		code, err := b.get(ctx, readyz)
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s: %v", readyz, err)
	}
}

func getJSON(t *testing.T, b *Backend, path string) map[string]any {
	t.Helper()
	resp, err := b.http.Get(b.cfg.Host + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
	}
	return obj
}

func putJSON(t *testing.T, b *Backend, path string, obj map[string]any) {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, b.cfg.Host+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s\n%s", path, resp.Status, body)
	}
}

// lineDiff is the lines of a and b that the other lacks.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// servedBy is the readiness check of the kube-apiserver started last.
func servedBy(b *Backend) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pod.ready
}
