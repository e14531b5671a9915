package tui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/anonlab/anonlab/steps"
)

const handsOnScenario = `
name: hands-on
title: Hands-on
steps:
  - id: up
    title: Create a cluster
    cluster: create
  - id: anonymous-api
    title: GET /api anonymously
    hints: ["A request with no credentials at all.", "curl with the CA only."]
    request: {as: anonymous, path: /api}
    expect: {status: 403}
cleanup:
  - id: down
    title: Delete the cluster
    cluster: destroy
`

// In hands-on mode the step waits for the attendee: the walkthrough says
// it is their turn with the command, h shows the hints one by one, and s
// lets the lab do the step, which then passes as done by the lab.
func TestWalkthroughHandsOn(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	sc, err := steps.Parse("hands-on.yaml", []byte(handsOnScenario))
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend()
	r := newRelay(Start(context.Background(), sc, b, steps.WithHandsOn(nil, time.Minute)), stable(b))
	t.Cleanup(func() {
		r.detach()
		r.Close()
		_ = b.Destroy(context.Background())
	})
	h := &harness{TestModel: teatest.NewTestModel(t, NewWalkthrough(r, testOptions...),
		teatest.WithInitialTermSize(160, 50), teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII))), engine: r, backend: b}
	h.step(t, "up")
	h.press("enter")
	r.waitFor(t, "the attendee's turn", 30*time.Second, func(ev steps.Event) bool { _, ok := ev.(steps.Waiting); return ok })
	shows := func(what string) {
		t.Helper()
		teatest.WaitFor(t, h.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) }, teatest.WithDuration(10*time.Second))
	}
	shows("your turn")
	h.press("h")
	shows("A request with no credentials at all.")
	h.press("h")
	shows("curl with the CA only.")
	h.press("s")
	r.waitFor(t, "the lab's answer", 30*time.Second, finished("anonymous-api", steps.Passed))
	r.waitFor(t, "the summary", 30*time.Second, isSummary)
	h.press("q")
	out := h.frame(t)
	for _, want := range []string{"the lab did this step for you", `curl --cacert "$CACERT" "$APISERVER/api"`, "Hint 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("the final frame lacks %q:\n%s", want, out)
		}
	}
}
