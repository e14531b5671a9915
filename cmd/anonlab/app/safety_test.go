package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/anonlab/anonlab/steps/cluster/local"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// anonlabBinary builds the command once per test binary: signal tests need
// a process of their own.
func anonlabBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "anonlab-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "anonlab")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/anonlab/anonlab/cmd/anonlab").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build anonlab: %v", buildErr)
	}
	return binPath
}

// TestExistingClusterRefusesGrant runs the article against a kube-apiserver
// the lab did not record as its own: the grant step refuses, and no
// ClusterRoleBinding names system:anonymous afterwards.
func TestExistingClusterRefusesGrant(t *testing.T) {
	needCluster(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir()) // the "foreign" cluster's own ledger
	foreign := local.New()
	ctx := context.Background()
	if err := foreign.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = foreign.Destroy(ctx) })
	kubeconfig := foreign.Info().Kubeconfig

	t.Setenv("ANONLAB_STATE_DIR", t.TempDir()) // the run's ledger: it knows nothing of that cluster
	code, out, errOut := run(t, "run", "anonymous-auth", "--backend", "existing", "--kubeconfig", kubeconfig, "--lang", "en")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "refusing to bind a role to anonymous users") || !strings.Contains(out, "--i-understand-this-opens-the-cluster") {
		t.Errorf("the grant step did not refuse with an explanation:\n%s", out)
	}
	cs, err := kubernetes.NewForConfig(foreign.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, crb := range crbs.Items {
		for _, s := range crb.Subjects {
			if s.Kind == rbacv1.UserKind && s.Name == "system:anonymous" {
				t.Errorf("ClusterRoleBinding %s binds system:anonymous", crb.Name)
			}
		}
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Errorf("the existing cluster was touched: its kubeconfig is gone: %v", err)
	}
}

// runUntil starts anonlab run --output json and returns once an event
// matches, with the process still running.
func runUntil(t *testing.T, stateDir string, match func(map[string]any) bool, flags ...string) (*exec.Cmd, *bufio.Scanner, string) {
	t.Helper()
	cmd := exec.Command(anonlabBinary(t), append([]string{"run", "anonymous-auth", "--backend", "local", "--output", "json"}, flags...)...)
	cmd.Env = append(os.Environ(), "ANONLAB_STATE_DIR="+stateDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	dir := ""
	cacert := regexp.MustCompile(`--cacert (\S+)/ca\.crt`)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if c, ok := e["command"].(string); ok && dir == "" {
			if m := cacert.FindStringSubmatch(c); m != nil {
				dir = m[1]
			}
		}
		if match(e) {
			return cmd, sc, dir
		}
	}
	t.Fatalf("the run ended before the awaited event (%v)", sc.Err())
	return nil, nil, ""
}

func TestInterrupt(t *testing.T) {
	needCluster(t)
	cases := []struct {
		name  string
		match func(map[string]any) bool
	}{
		{"after the first 403", func(e map[string]any) bool { return e["event"] == "http" && e["status"] == 403.0 }},
		{"during the apiserver restart", func(e map[string]any) bool {
			return e["event"] == "progress" && e["step"] == "disable-anonymous" && e["phase"] == "wait"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := t.TempDir()
			cmd, sc, dir := runUntil(t, stateDir, tc.match)
			if dir == "" {
				t.Fatal("no directory of the run seen")
			}
			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			var summary map[string]any
			for sc.Scan() {
				var e map[string]any
				if json.Unmarshal(sc.Bytes(), &e) == nil && e["event"] == "summary" {
					summary = e
				}
			}
			err := cmd.Wait()
			took := time.Since(start)
			if took > 10*time.Second {
				t.Errorf("exited %s after SIGINT, want ≤ 10s", took)
			}
			if code := cmd.ProcessState.ExitCode(); code != ExitFailed {
				t.Errorf("exit %d (%v), want 1: the run was interrupted", code, err)
			}
			if summary == nil || summary["skipped"].(float64) == 0 {
				t.Errorf("summary %v: want skipped steps", summary)
			}
			assertNothingLeft(t, dir, stateDir)
		})
	}
}

// TestCleanupAfterSIGKILL kills runs outright. A run's etcd and
// kube-apiserver die with it (Linux's parent-death signal) unless it keeps
// its cluster (--keep); cleanup removes what is left: a kept cluster's
// processes, the run's directory, its ledger entry.
func TestCleanupAfterSIGKILL(t *testing.T) {
	needCluster(t)
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			stateDir := t.TempDir()
			var flags []string
			if keep {
				flags = append(flags, "--keep")
			}
			cmd, _, dir := runUntil(t, stateDir, func(e map[string]any) bool { return e["event"] == "http" && e["status"] == 403.0 }, flags...)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if keep && len(processesMentioning(t, dir)) == 0 {
				t.Fatal("the kept cluster's processes died with the run: cleanup has nothing to stop")
			}
			if !keep {
				err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
					return len(processesMentioning(t, dir)) == 0, nil
				})
				if err != nil {
					t.Errorf("processes of the killed run still run: %v", processesMentioning(t, dir))
				}
			}
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("SIGKILL left no directory (%v): the test proves nothing", err)
			}
			t.Setenv("ANONLAB_STATE_DIR", stateDir)
			code, out, errOut := run(t, "status")
			if code != ExitOK || !strings.Contains(out, "left behind") || !strings.Contains(out, dir) {
				t.Errorf("status: exit %d, %q %q; want the run's leftovers", code, out, errOut)
			}
			code, out, errOut = run(t, "cleanup")
			if code != ExitOK || !strings.Contains(out, "1 removed") {
				t.Errorf("cleanup: exit %d, %q %q", code, out, errOut)
			}
			assertNothingLeft(t, dir, stateDir)
		})
	}
}

func TestConcurrentRuns(t *testing.T) {
	needCluster(t)
	bin := anonlabBinary(t)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			out, err := exec.Command(bin, "run", "anonymous-auth", "--backend", "local").CombinedOutput()
			if err != nil {
				t.Errorf("run %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
}

func assertNothingLeft(t *testing.T, dir, stateDir string) {
	t.Helper()
	if pids := processesMentioning(t, dir); len(pids) > 0 {
		t.Errorf("processes of the run still running: %v", pids)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run's directory %s is still there", dir)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "*.json")); len(left) > 0 {
		t.Errorf("state entries left: %v", left)
	}
}
