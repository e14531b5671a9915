package kind_test

import (
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
	events, err := attendee.Play(bin, []string{"anonymous-auth", "--backend", "kind", "--node-image", image, "--lang", "en", "--step-timeout", "5m"},
		[]string{"ANONLAB_STATE_DIR=" + t.TempDir()}, path, nil, t.Logf)
	if err != nil {
		t.Error(err)
	}
	matched := map[string]attendee.Event{}
	probes := 0
	for _, e := range events {
		switch {
		case e.Event == "observed" && e.Step == "apiserver-pod-not-ready" && strings.HasPrefix(e.UserAgent, "kube-probe/") && e.Status == 401:
			probes++
		case e.Event == "observed" && e.Matched:
			matched[e.Step] = e
		case e.Event == "finished" && e.Result == "failed":
			t.Errorf("step %s failed: %s", e.Step, e.Error)
		}
	}
	if len(events) == 0 || events[len(events)-1].Event != "summary" || events[len(events)-1].Failed == nil || *events[len(events)-1].Failed != 0 {
		t.Error("the run did not end with a summary with no failure")
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
