package local

import (
	"context"
	"errors"
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
		// Served means every check passes, the post-start hooks' too: they
		// are in /livez and /healthz as well, which answer 500 until the
		// hooks have run (a restart that did not wait for them showed
		// anonymous health probes 500 instead of 200).
		for _, path := range []string{"/livez", "/healthz", "/readyz"} {
			if code, err := b.get(ctx, path); err != nil || code != http.StatusOK {
				t.Errorf("GET %s as the admin once ReconfigureAPIServer returned = %d, %v; want 200", path, code, err)
			}
		}
		began = time.Now()
		restore(t)
		t.Logf("RestoreAPIServer took %s", time.Since(began).Round(time.Millisecond))
		if code := get(t, anonymous, b.Info().URL+"/api"); code != http.StatusForbidden {
			t.Errorf("anonymous GET /api = %d, want 403", code)
		}
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
