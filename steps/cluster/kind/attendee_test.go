package kind_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/e2e/attendee"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/kind"
)

// TestHandsOnAttendeeKind is issue 11's "must show" on kind: `anonlab run
// anonymous-auth --backend kind --hands-on`, with an attendee in bash who
// types each command the lab shows, verbatim after eval "$(anonlab env)"
// (the flag change through $NODE); every step passes on what the lab
// observes, and the kubelet's failing probes are shown in the NotReady
// step.
func TestHandsOnAttendeeKind(t *testing.T) {
	_, image := kind.RequireKind(t)
	bin := filepath.Join(t.TempDir(), "anonlab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/anonlab/anonlab/cmd/anonlab").CombinedOutput(); err != nil {
		t.Fatalf("build anonlab: %v\n%s", err, out)
	}
	path, err := attendee.KubectlPath(cluster.DefaultKubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cmd := exec.Command(bin, "run", "anonymous-auth", "--backend", "kind", "--node-image", image, "--hands-on", "--output", "json", "--lang", "en", "--step-timeout", "5m")
	cmd.Env = append(os.Environ(), "ANONLAB_STATE_DIR="+state)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sh, err := attendee.Start(bin, []string{"ANONLAB_STATE_DIR=" + state}, path...)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	type event struct {
		Event, Step, Command, User, Decision, Reason, Result, Error, UserAgent string
		Status                                                                 int
		Matched                                                                bool
		Failed                                                                 *int
	}
	matched := map[string]event{}
	probes := 0
	var last event
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		last = e
		switch {
		case e.Event == "waiting":
			out, status, err := sh.Type(e.Command)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("$ %s\n%s\n(exit %d)", e.Command, out, status)
		case e.Event == "observed" && e.Step == "apiserver-pod-not-ready" && strings.HasPrefix(e.UserAgent, "kube-probe/") && e.Status == 401:
			probes++
		case e.Event == "observed" && e.Matched:
			matched[e.Step] = e
		case e.Event == "finished" && e.Result == "failed":
			t.Errorf("step %s failed: %s", e.Step, e.Error)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("anonlab run --hands-on --backend kind: %v\nstderr:\n%s", err, stderr.String())
	}
	if last.Event != "summary" || last.Failed == nil || *last.Failed != 0 {
		t.Errorf("last event %+v, want a summary with no failure", last)
	}
	if e := matched["anonymous-api"]; e.Status != 403 || e.User != "system:anonymous" || e.Decision != "forbid" {
		t.Errorf("anonymous-api observed %+v, want 403 by system:anonymous, forbid", e)
	}
	if e := matched["anonymous-namespaces-granted"]; e.Status != 200 || !strings.Contains(e.Reason, "my-cluster-role-binding") {
		t.Errorf("anonymous-namespaces-granted observed %+v, want 200 by my-cluster-role-binding", e)
	}
	if e := matched["anonymous-api-unauthorized"]; e.Status != 401 || e.User != "" {
		t.Errorf("anonymous-api-unauthorized observed %+v, want 401 with no user", e)
	}
	if probes == 0 {
		t.Error("the NotReady step showed no kubelet probe answered 401")
	}
}
