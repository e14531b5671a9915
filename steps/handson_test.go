package steps_test

import (
	"context"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/local"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

const handsOnScenario = `
name: hands-on
title: t
steps:
  - id: up
    title: t
    cluster: create
  - id: anonymous-api
    title: t
    hints: ["no credentials", {en: "curl with the CA only", ja: "CA だけの curl"}]
    request: {as: anonymous, path: /api}
    expect: {status: 403}
cleanup:
  - id: down
    title: t
    cluster: destroy
`

// A step nobody does fails once --step-timeout passes, with the command
// that would have done it; cleanup runs.
func TestHandsOnStepTimeout(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	sum := steps.Run(context.Background(), parse(t, handsOnScenario), newBackend(t), rec, steps.WithHandsOn(nil, 200*time.Millisecond))
	got := outcomes(rec.events)
	want := []outcome{{"up", false, steps.Passed}, {"anonymous-api", false, steps.Failed}, {"down", true, steps.Passed}}
	if !slices.Equal(got, want) || sum.Failed != 1 {
		t.Fatalf("outcomes %v (failed %d), want %v", got, sum.Failed, want)
	}
	waiting := of[steps.Waiting](rec.events)
	if len(waiting) != 1 || waiting[0].Step != "anonymous-api" || waiting[0].Command != `curl --cacert "$CACERT" "$APISERVER/api"` {
		t.Errorf("waiting events %+v, want one for anonymous-api with its curl", waiting)
	}
	fin := of[steps.StepFinished](rec.events)[1]
	if !strings.Contains(fin.Error, "not done within 200ms (--step-timeout)") || !strings.Contains(fin.Error, "curl") {
		t.Errorf("error %q, want the timeout and the command", fin.Error)
	}
}

// s (Solve) lets the lab do the step: it sends the request itself, the
// expectations hold, and the step is marked as done by the lab.
func TestHandsOnSolve(t *testing.T) {
	t.Parallel()
	cmds := make(chan int, 1)
	rec := &recorder{onEmit: func(e steps.Event) {
		if _, ok := e.(steps.Waiting); ok {
			cmds <- steps.Solve
		}
	}}
	sum := steps.Run(context.Background(), parse(t, handsOnScenario), newBackend(t), rec, steps.WithHandsOn(cmds, time.Minute))
	if got := outcomes(rec.events); sum.Failed != 0 || got[1] != (outcome{"anonymous-api", false, steps.Passed}) {
		t.Fatalf("outcomes %v, want anonymous-api passed", got)
	}
	if d := of[steps.DoneByLab](rec.events); len(d) != 1 || d[0].Step != "anonymous-api" {
		t.Errorf("doneByLab events %+v, want one for anonymous-api", d)
	}
	if h := of[steps.HTTPExchange](rec.events); len(h) != 1 || h[0].Status != 403 {
		t.Errorf("http events %+v, want the lab's own 403", h)
	}
	// The hints travel with the scenario's steps, in the run's language.
	if info := of[steps.ScenarioStarted](rec.events)[0].Steps[1]; len(info.Hints) != 2 || info.Hints[1] != "curl with the CA only" {
		t.Errorf("hints %q", info.Hints)
	}
}

// A step the attendee undoes by hand (the binding deleted after the grant
// passed) is named when a later step waits: that is why it cannot pass.
func TestHandsOnUndone(t *testing.T) {
	t.Parallel()
	sc := parse(t, `
name: undone
title: t
steps:
  - id: up
    title: t
    cluster: create
  - id: grant
    title: t
    apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}
  - id: namespaces
    title: t
    request: {as: anonymous, path: /api/v1/namespaces}
    expect: {status: 200}
cleanup:
  - id: down
    title: t
    cluster: destroy
`)
	b := newBackend(t)
	bindings := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	cmds := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	said := false
	steps.Run(ctx, sc, b, steps.SinkFunc(func(e steps.Event) {
		switch e := e.(type) {
		case steps.Waiting:
			if e.Step == "grant" {
				cmds <- steps.Solve
			}
		case steps.StepFinished:
			if e.Step == "grant" {
				// Undone behind the lab's back, before the next step waits.
				dyn, err := dynamic.NewForConfig(b.AdminConfig())
				if err != nil {
					t.Fatal(err)
				}
				if err := dyn.Resource(bindings).Delete(context.Background(), "my-cluster-role-binding", metav1.DeleteOptions{}); err != nil {
					t.Errorf("delete the binding: %v", err)
				}
			}
		case steps.Log:
			if e.Step == "namespaces" && strings.Contains(e.Text, `step "grant" was undone since it passed (not there: ClusterRoleBinding my-cluster-role-binding)`) {
				said = true
				cancel() // nothing more to see: the attendee leaves
			}
		}
	}), steps.WithHandsOn(cmds, 30*time.Second))
	if !said {
		t.Error("no log of the namespaces step said the grant was undone")
	}
}

// An edit that keeps kube-apiserver from starting shows its own error line
// and the step waits; b (RestoreManifest) puts the original manifest back
// and the step is still the attendee's (here the lab then does it: s).
func TestHandsOnBrokenManifestLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd and kube-apiserver: run without -short (make test does)")
	}
	sc := parse(t, `
name: broken
title: t
steps:
  - id: up
    title: t
    cluster: create
  - id: off
    title: t
    apiserverFlags: {set: [--anonymous-auth=false]}
cleanup:
  - id: down
    title: t
    cluster: destroy
`)
	b := local.New()
	cmds := make(chan int, 1)
	var logs []string
	steps.Run(context.Background(), sc, b, steps.SinkFunc(func(e steps.Event) {
		switch e := e.(type) {
		case steps.Waiting:
			file := b.Info().APIServerManifest
			data, err := os.ReadFile(file)
			if err == nil {
				data, err = staticpod.Edit(data, []string{"--anonymous-auth=maybe"}, nil)
			}
			if err == nil {
				err = os.WriteFile(file, data, 0o600)
			}
			if err != nil {
				t.Errorf("break the manifest: %v", err)
			}
		case steps.Log:
			logs = append(logs, e.Text)
			switch {
			case strings.Contains(e.Text, "did not start from the manifest") && strings.Contains(e.Text, `invalid argument "maybe"`):
				cmds <- steps.RestoreManifest
			case strings.HasPrefix(e.Text, "putting kube-apiserver's original manifest back"):
				cmds <- steps.Solve
			}
		}
	}), steps.WithHandsOn(cmds, 2*time.Minute))
	want := []string{`invalid argument "maybe"`, "putting kube-apiserver's original manifest back", "the lab does this step for you"}
	for _, w := range want {
		if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("no log says %q; logs:\n%s", w, strings.Join(logs, "\n"))
		}
	}
}
