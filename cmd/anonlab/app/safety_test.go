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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
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

// runUntil starts anonlab run anonymous-auth --backend local --output json
// and returns once an event matches, with the process still running.
func runUntil(t *testing.T, stateDir string, match func(map[string]any) bool, flags ...string) (*exec.Cmd, *bufio.Scanner, string) {
	t.Helper()
	return startUntil(t, stateDir, append([]string{"run", "anonymous-auth", "--backend", "local", "--output", "json"}, flags...), match)
}

// startUntil starts the anonlab binary with args (a run with --output json)
// and returns once an event matches, with the process still running, and
// the run's private directory when a command named it.
func startUntil(t *testing.T, stateDir string, args []string, match func(map[string]any) bool) (*exec.Cmd, *bufio.Scanner, string) {
	t.Helper()
	cmd := exec.Command(anonlabBinary(t), args...)
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
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if c, ok := e["text"].(string); ok && dir == "" {
			if m := caDir.FindStringSubmatch(c); m != nil {
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
			t.Cleanup(func() {
				// Whatever the test found, nothing of the run outlives it.
				c := exec.Command(anonlabBinary(t), "cleanup", "--all")
				c.Env = append(os.Environ(), "ANONLAB_STATE_DIR="+stateDir)
				_ = c.Run()
			})
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
			state, removes := "left behind", []string{"cleanup"}
			if keep {
				// A kept cluster outlives plain cleanup; --all removes it.
				state, removes = "kept", []string{"cleanup", "--all"}
				if code, out, _ := run(t, "cleanup"); code != ExitOK || !strings.Contains(out, "0 removed") {
					t.Errorf("plain cleanup removed a kept cluster: exit %d\n%s", code, out)
				}
			}
			code, out, errOut := run(t, "status")
			if code != ExitOK || !strings.Contains(out, state) || !strings.Contains(out, dir) {
				t.Errorf("status: exit %d, %q %q; want the run's leftovers, %s", code, out, errOut, state)
			}
			code, out, errOut = run(t, removes...)
			if code != ExitOK || !strings.Contains(out, "1 removed") {
				t.Errorf("%v: exit %d, %q %q", removes, code, out, errOut)
			}
			assertNothingLeft(t, dir, stateDir)
		})
	}
}

// TestConcurrentRuns: two runs at once get their own ports, directories
// and ledger entries, both pass, and neither leaves anything.
func TestConcurrentRuns(t *testing.T) {
	needCluster(t)
	bin := anonlabBinary(t)
	stateDir := t.TempDir()
	type seen struct{ url, dir string }
	runs := make([]seen, 2)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			cmd := exec.Command(bin, "run", "anonymous-auth", "--backend", "local", "--output", "json")
			cmd.Env = append(os.Environ(), "ANONLAB_STATE_DIR="+stateDir)
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("run %d: %v\n%s", i, err, out)
				return
			}
			for _, line := range strings.Split(string(out), "\n") {
				var e struct{ Event, URL, Text string }
				if json.Unmarshal([]byte(line), &e) != nil {
					continue
				}
				if e.Event == "cluster" && e.URL != "" {
					runs[i].url = e.URL
				}
				if m := caDir.FindStringSubmatch(e.Text); m != nil {
					runs[i].dir = m[1]
				}
			}
		})
	}
	// While both run, each has its own ledger entry.
	entries := map[string]bool{}
	for len(entries) < 2 && !t.Failed() {
		files, _ := filepath.Glob(filepath.Join(stateDir, "*.json"))
		for _, f := range files {
			entries[filepath.Base(f)] = true
		}
		if ended := waitTimeout(&wg, 20*time.Millisecond); ended {
			break
		}
	}
	wg.Wait()
	if len(entries) < 2 {
		t.Errorf("ledger entries seen: %v, want one per run", entries)
	}
	if runs[0].url == "" || runs[0].url == runs[1].url {
		t.Errorf("apiserver URLs %q and %q: want two distinct ports", runs[0].url, runs[1].url)
	}
	if runs[0].dir == "" || runs[0].dir == runs[1].dir {
		t.Errorf("directories %q and %q: want two", runs[0].dir, runs[1].dir)
	}
	for _, r := range runs {
		if r.dir != "" {
			assertNothingLeft(t, r.dir, stateDir)
		}
	}
}

// waitTimeout waits for wg at most d, and reports whether it ended.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
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

// TestPanicCleansUp: a step that panics (a test build) fails; cleanup and
// the safety net run, nothing of the run is left, and the run exits 1 with
// the stack in its log.
func TestPanicCleansUp(t *testing.T) {
	needCluster(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "anonlab-panic")
	if out, err := exec.Command("go", "build", "-tags", "anonlab_panic", "-o", bin, "github.com/anonlab/anonlab/cmd/anonlab").CombinedOutput(); err != nil {
		t.Fatalf("build with -tags anonlab_panic: %v\n%s", err, out)
	}
	stateDir := t.TempDir()
	cmd := exec.Command(bin, "run", "--file", "testdata/panic.yaml", "--backend", "local", "--output", "json")
	cmd.Env = append(os.Environ(), "ANONLAB_STATE_DIR="+stateDir)
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != ExitFailed {
		t.Errorf("exit %d, want 1\n%s", code, out)
	}
	var runDir string
	results := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e struct{ Event, Step, Result, Text string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if e.Event == "finished" {
			results[e.Step] = e.Result
		}
		if m := caDir.FindStringSubmatch(e.Text); m != nil {
			runDir = m[1]
		}
	}
	want := map[string]string{"grant-anonymous": "passed", "boom": "failed", "after": "skipped", "destroy-cluster": "passed"}
	for step, r := range want {
		if results[step] != r {
			t.Errorf("step %s: %q, want %q", step, results[step], r)
		}
	}
	if !strings.Contains(string(out), "panic in step") || !strings.Contains(string(out), "goroutine") {
		t.Errorf("no stack in the log:\n%s", out)
	}
	if runDir == "" {
		t.Fatal("no directory of the run seen")
	}
	assertNothingLeft(t, runDir, stateDir)
}
