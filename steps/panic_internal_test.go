package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

type panicking struct{}

func (panicking) Validate(*Validator) error               { return nil }
func (panicking) Run(context.Context, *StepContext) error { panic("injected") }

// TestPanicFailsTheStep: a panic in a step's action fails that step with
// the stack in the log; the rest is skipped, cleanup and the safety net
// run (the grant is revoked).
func TestPanicFailsTheStep(t *testing.T) {
	registry["panic"] = func() Action { return panicking{} }
	t.Cleanup(func() { delete(registry, "panic") })
	sc, err := Parse("panic.yaml", []byte(`
name: p
title: p
steps:
  - {id: create, title: create, cluster: create}
  - {id: grant, title: grant, apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}}
  - {id: boom, title: boom, panic: {}}
  - {id: after, title: after, request: {as: anonymous, path: /api}, expect: {status: 403}}
cleanup:
  - {id: destroy, title: destroy, cluster: destroy}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := clustertest.New()
	t.Cleanup(func() { _ = b.Destroy(context.Background()) })
	var events []Event
	var objectsAtCleanup []string
	sum := Run(t.Context(), sc, b, SinkFunc(func(e Event) {
		events = append(events, e)
		if s, ok := e.(StepStarted); ok && s.Step == "destroy" {
			objectsAtCleanup = b.Objects()
		}
	}), WithKeepCluster(true))
	got := map[string]string{}
	var logs []string
	for _, e := range events {
		switch ev := e.(type) {
		case StepFinished:
			got[ev.Step] = ev.Status
		case Log:
			logs = append(logs, ev.Text)
		}
	}
	want := map[string]string{"create": Passed, "grant": Passed, "boom": Failed, "after": Skipped, "destroy": Skipped}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("step %s: %s, want %s", id, got[id], w)
		}
	}
	if !strings.Contains(strings.Join(logs, "\n"), `panic in step "boom": injected`) || !strings.Contains(strings.Join(logs, "\n"), "goroutine") {
		t.Errorf("no panic with its stack in the log: %q", logs)
	}
	if len(objectsAtCleanup) == 0 {
		t.Error("the grant was gone before cleanup: the test proves nothing")
	}
	if objs := b.Objects(); len(objs) > 0 || sum.Failed == 0 {
		t.Errorf("after the run: objects %v (want none: the safety net revokes), summary %+v", objs, sum)
	}
}
