package steps_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps"
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
