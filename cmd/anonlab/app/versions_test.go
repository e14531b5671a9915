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

// TestHealthOnlyLocalV1202: what v1.20.2 really does with the scenario's
// AuthenticationConfiguration — it refuses the flag, the lab rolls back,
// and anonymous requests stay on (the scenario's "<1.29" expectations).
func TestHealthOnlyLocalV1202(t *testing.T) {
	needCluster(t)
	needCached(t, "v1.20.2")
	code, out, errOut := run(t, "run", "anonymous-health-only", "--backend", "local", "--kubernetes-version", "v1.20.2", "--output", "json", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	type event struct {
		Event  string `json:"event"`
		Step   string `json:"step"`
		Name   string `json:"name"`
		Got    string `json:"got"`
		OK     bool   `json:"ok"`
		Result string `json:"result"`
		Error  string `json:"error"`
		Path   string `json:"path"`
		Status int    `json:"status"`
	}
	results := map[string]event{}
	var refused []event
	statuses := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		switch {
		case e.Event == "finished":
			results[e.Step] = e
		case e.Event == "check" && e.Step == "health-only-config-refused":
			refused = append(refused, e)
		case e.Event == "http":
			statuses[e.Step] = e.Status
		}
	}
	if r := results["health-only-config"]; r.Result != "skipped" || r.Error != "the step is for Kubernetes >=1.34; this cluster runs v1.20.2" {
		t.Errorf("health-only-config: %+v, want skipped for its version", r)
	}
	if r := results["health-only-config-refused"]; r.Result != "passed" {
		t.Errorf("health-only-config-refused: %+v, want passed", r)
	}
	gotError := false
	for _, c := range refused {
		gotError = gotError || c.OK && strings.Contains(c.Got, "Error: unknown flag: --authentication-config")
	}
	if !gotError {
		t.Errorf("no passed check of kube-apiserver's error line: %+v", refused)
	}
	for step, want := range map[string]int{"anonymous-livez": 200, "anonymous-version": 200, "anonymous-api": 403, "anonymous-namespaces": 200} {
		if statuses[step] != want {
			t.Errorf("%s answered %d, want %d", step, statuses[step], want)
		}
	}
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
