package app

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/e2e/attendee"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// needCached skips unless the binaries of version are in the cache: a
// build of an old release takes long (about 25 minutes on 2 cores), so
// the test does not start one.
func needCached(t *testing.T, version string) {
	t.Helper()
	root, err := binaries.CacheRoot()
	if err != nil {
		t.Skip(err)
	}
	if _, err := binaries.Resolve(t.Context(), version, binaries.WithDir(filepath.Join(root, version))); err != nil {
		t.Skipf("needs the %s binaries in the cache (%v): make binaries KUBERNETES_VERSION=%s", version, err, version)
	}
}

// TestRunArticleLocalV1202 is the article on the Kubernetes it was
// written for: v1.20.2, the token read from the ServiceAccount's Secret,
// then 200 → 403 → 403 → grant → 200 with the four namespaces → 401.
func TestRunArticleLocalV1202(t *testing.T) {
	needCluster(t)
	needCached(t, "v1.20.2")
	code, out, errOut := run(t, "run", "anonymous-auth", "--backend", "local", "--kubernetes-version", "v1.20.2", "--output", "json", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	type event struct {
		Event             string `json:"event"`
		Step              string `json:"step"`
		KubernetesVersion string `json:"kubernetesVersion"`
		Command           string `json:"command"`
		Text              string `json:"text"`
		Failed            *int   `json:"failed"`
		answer
	}
	var https, logs, commands []event
	var version string
	var last event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		switch e.Event {
		case "http":
			https = append(https, e)
		case "cluster":
			if version == "" {
				version = e.KubernetesVersion
			}
		case "log":
			logs = append(logs, e)
		case "command":
			commands = append(commands, e)
		}
		last = e
	}
	if last.Event != "summary" || last.Failed == nil || *last.Failed != 0 {
		t.Errorf("last line %+v, want a summary with failed 0", last)
	}
	if version != "v1.20.2" {
		t.Errorf("/version says %q, want v1.20.2", version)
	}
	secretCommand, secretLog := false, false
	for _, c := range commands {
		secretCommand = secretCommand || c.Step == "sa-token" && strings.Contains(c.Command, "kubectl get secret") && strings.Contains(c.Command, "-o jsonpath='{.data.token}' | base64 -d")
	}
	for _, l := range logs {
		secretLog = secretLog || l.Step == "sa-token" && strings.Contains(l.Text, "from its Secret default/default-token-")
	}
	if !secretCommand || !secretLog {
		t.Errorf("the token step does not read the ServiceAccount's Secret (command: %v, log: %v): %+v %+v", secretCommand, secretLog, commands, logs)
	}
	answers := make([]answer, len(https))
	for i := range https {
		answers[i] = https[i].answer
	}
	checkArticle(t, answers)
	if strings.Contains(out, "eyJ") {
		t.Errorf("a token (JWT) appears in the output")
	}
	dir := caDir.FindStringSubmatch(out)
	if dir == nil {
		t.Fatalf("no CA file named in the output")
	}
	if pids := processesMentioning(t, dir[1]); len(pids) > 0 {
		t.Errorf("processes of the run (kube-controller-manager too) still running: %v", pids)
	}
}

// anonlab binaries says which dependency pins the build of the binaries
// it prints applied (recorded beside them).
func TestBinariesPrintsPins(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{binaries.KubeAPIServer, binaries.Etcd} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pin := "github.com/modern-go/reflect2 v1.0.1 → v1.0.2: why"
	if err := os.WriteFile(filepath.Join(dir, "pins.txt"), []byte(pin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "binaries", "--binaries-dir", dir)
	if code != ExitOK || strings.TrimSpace(out) != dir {
		t.Fatalf("exit %d, stdout %q; want 0 and %s (stderr %s)", code, out, dir, errOut)
	}
	if !strings.Contains(errOut, "pin: "+pin+"\n") {
		t.Errorf("stderr %q does not name the pin", errOut)
	}
}

// healthOnlyEvent is the part of anonlab's JSON lines the health-only
// tests read.
type healthOnlyEvent struct {
	Event  string `json:"event"`
	Step   string `json:"step"`
	Name   string `json:"name"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
	Result string `json:"result"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// runHealthOnly runs anonymous-health-only on the cached binaries of
// version (exit 0 required) and returns each step's finished event, its
// checks, and the status its request got.
func runHealthOnly(t *testing.T, version string) (results map[string]healthOnlyEvent, checks map[string][]healthOnlyEvent, statuses map[string]int) {
	t.Helper()
	needCluster(t)
	needCached(t, version)
	code, out, errOut := run(t, "run", "anonymous-health-only", "--backend", "local", "--kubernetes-version", version, "--output", "json", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	results, checks, statuses = map[string]healthOnlyEvent{}, map[string][]healthOnlyEvent{}, map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e healthOnlyEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		switch e.Event {
		case "finished":
			results[e.Step] = e
		case "check":
			checks[e.Step] = append(checks[e.Step], e)
		case "http":
			statuses[e.Step] = e.Status
		}
	}
	return results, checks, statuses
}

// checkHealthOnly checks that the steps passed or were skipped for
// version as want says, that each step of errors has a passed check of
// kube-apiserver's error line containing its text, and the statuses; it
// returns the steps' finished events.
func checkHealthOnly(t *testing.T, version string, want map[string]string, errors map[string]string, statuses map[string]int) map[string]healthOnlyEvent {
	t.Helper()
	results, checks, got := runHealthOnly(t, version)
	for step, result := range want {
		if r := results[step]; r.Result != result {
			t.Errorf("%s: %+v, want %s", step, r, result)
		}
	}
	for step, line := range errors {
		seen := false
		for _, c := range checks[step] {
			seen = seen || c.OK && strings.Contains(c.Got, line)
		}
		if !seen {
			t.Errorf("%s: no passed check of kube-apiserver's error line %q: %+v", step, line, checks[step])
		}
	}
	for step, status := range statuses {
		if got[step] != status {
			t.Errorf("%s answered %d, want %d", step, got[step], status)
		}
	}
	return results
}

// TestHealthOnlyLocalV1202: what v1.20.2 really does with the scenario's
// AuthenticationConfiguration — it refuses the flag, the lab rolls back,
// and anonymous requests stay on (the scenario's "<1.29" expectations).
func TestHealthOnlyLocalV1202(t *testing.T) {
	results := checkHealthOnly(t, "v1.20.2",
		map[string]string{"health-only-config": "skipped", "health-only-config-refused": "passed", "both-settings-refused": "skipped"},
		map[string]string{"health-only-config-refused": "Error: unknown flag: --authentication-config"},
		map[string]int{"anonymous-livez": 200, "anonymous-version": 200, "anonymous-api": 403, "anonymous-namespaces": 200})
	if r := results["health-only-config"]; r.Error != "the step is for Kubernetes >=1.34; this cluster runs v1.20.2" {
		t.Errorf("health-only-config: %+v, want skipped for its version", r)
	}
}

// healthOnly is what a version with the anonymous: block answers: the
// health paths anonymously, nothing else.
var healthOnly = map[string]int{"anonymous-livez": 200, "anonymous-readyz": 200, "anonymous-healthz": 200, "anonymous-version": 401, "anonymous-api": 401, "anonymous-namespaces": 401, "anonymous-livez-after-rollback": 200}

// TestHealthOnlyLocalV131: in 1.31 the anonymous field is alpha —
// kube-apiserver refuses it without AnonymousAuthConfigurableEndpoints
// (its own spelling of the gate in the error), takes it with the gate.
func TestHealthOnlyLocalV131(t *testing.T) {
	checkHealthOnly(t, "v1.31.14",
		map[string]string{"health-only-config": "skipped", "health-only-config-beta": "skipped", "health-only-config-alpha-refused": "passed", "health-only-config-alpha": "passed", "both-settings-refused": "passed"},
		map[string]string{
			"health-only-config-alpha-refused": "anonymous is not supported when AnonymousAuthConfigurableEnpoints feature gate is disabled",
			"both-settings-refused":            "--anonynous-auth flag cannot be set when anonymous field is configured",
		},
		healthOnly)
}

// TestHealthOnlyLocalV132: in 1.32 the anonymous field is beta and on by
// default, in apiserver.config.k8s.io/v1beta1.
func TestHealthOnlyLocalV132(t *testing.T) {
	checkHealthOnly(t, "v1.32.13",
		map[string]string{"health-only-config": "skipped", "health-only-config-beta": "passed", "health-only-config-alpha-refused": "skipped", "health-only-config-alpha": "skipped", "both-settings-refused": "passed"},
		map[string]string{"both-settings-refused": "--anonynous-auth flag cannot be set when anonymous field is configured"},
		healthOnly)
}

// TestHandsOnArticleLocalV1202: in hands-on mode on v1.20.2 the attendee
// reads the token from the ServiceAccount's Secret, as the article does;
// the lab sees that GET of the Secret in the audit log.
func TestHandsOnArticleLocalV1202(t *testing.T) {
	needCluster(t)
	needCached(t, "v1.20.2")
	events, err := attendee.Play(anonlabBinary(t), []string{"anonymous-auth", "--backend", "local", "--kubernetes-version", "v1.20.2", "--lang", "en", "--step-timeout", "3m"},
		[]string{"ANONLAB_STATE_DIR=" + t.TempDir()}, kubectlDirs(t), nil, t.Logf)
	if err != nil {
		t.Error(err)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	secretRead, failed := false, 0
	for _, e := range events {
		if e.Event == "observed" && e.Step == "sa-token" && e.Matched {
			secretRead = true
		}
		if e.Event == "finished" && e.Result == "failed" {
			failed++
			t.Errorf("step %s failed: %s", e.Step, e.Error)
		}
	}
	if !secretRead {
		t.Errorf("the attendee's read of the token Secret was not observed: %+v", events)
	}
	if last := events[len(events)-1]; last.Event != "summary" || last.Failed == nil || *last.Failed != 0 || failed > 0 {
		t.Errorf("the run did not end with a summary with no failure: %+v", last)
	}
}
