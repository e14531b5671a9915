package tui

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// passedRow is a ✓ in the step list (the detail has ✓ checks too).
var passedRow = regexp.MustCompile(`(?m)^[ ▸] ✓ `)

// TestRealWalkthrough drives the engine on a real etcd and kube-apiserver
// through the walkthrough: enter, then a, until the 401; then q, after
// which no process of the run is left.
func TestRealWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd and kube-apiserver: run without -short (make test does)")
	}
	sc, err := steps.Load("anonymous-auth")
	if err != nil {
		t.Fatal(err)
	}
	b, err := backends.New("local", backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lb, ok := b.(*local.Backend)
	if !ok {
		t.Fatalf("backends.New(local) is a %T", b)
	}
	eng := newRelay(Start(context.Background(), sc, b, steps.WithLang("en")), func(ev steps.Event) steps.Event { return ev })
	t.Cleanup(func() {
		eng.detach()
		eng.Close()
		_ = b.Destroy(context.Background())
	})
	var seen []steps.Event
	waitFor := func(what string, match func(steps.Event) bool) {
		t.Helper()
		seen = append(seen, eng.waitFor(t, what, 3*time.Minute, match)...)
	}
	tm := teatest.NewTestModel(t, NewWalkthrough(eng), teatest.WithInitialTermSize(160, 50))

	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor("a cluster", finished("create-cluster", steps.Passed))
	pids := lb.Pids()
	if len(pids) != 2 {
		t.Fatalf("the cluster runs %d processes, want etcd and kube-apiserver", len(pids))
	}
	tm.Send(tea.KeyPressMsg{Code: 'a', Text: "a"})
	waitFor("the 401", finished("anonymous-api-unauthorized", steps.Passed))
	var sum steps.Summary
	waitFor("the summary", func(ev steps.Event) bool {
		s, ok := ev.(steps.Summary)
		sum = s
		return ok
	})
	for _, ev := range seen {
		if f, ok := ev.(steps.StepFinished); ok && f.Status == steps.Failed {
			t.Errorf("step %s failed: %s", f.Step, f.Error)
		}
	}

	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	w, ok := tm.FinalModel(t, teatest.WithFinalTimeout(time.Minute)).(Walkthrough)
	if !ok {
		t.Fatal("the final model is not the walkthrough")
	}
	out := plain(w.View().Content)
	for _, want := range []string{
		`forbidden: User "system:anonymous" cannot get path "/api"`,
		"default kube-node-lease kube-public kube-system",
		"401 · Unauthorized",
		fmt.Sprintf("Finished: %d passed, 0 failed, %d skipped", sum.Passed, sum.Skipped),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the last frame lacks %q:\n%s", want, out)
		}
	}
	if n := len(passedRow.FindAllString(out, -1)); n != sum.Passed {
		t.Errorf("%d steps show ✓, want %d:\n%s", n, sum.Passed, out)
	}

	eng.Close()
	if left := lb.Pids(); len(left) > 0 {
		t.Errorf("processes left after the walkthrough: %v", left)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d (etcd or kube-apiserver) is still there: %v", pid, err)
		}
	}
}
