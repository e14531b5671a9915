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

// tap passes the engine's events on to the walkthrough and lets the test
// watch them too.
type tap struct {
	*Engine
	events, seen chan steps.Event
}

func newTap(e *Engine) *tap {
	t := &tap{Engine: e, events: make(chan steps.Event, 1024), seen: make(chan steps.Event, 1024)}
	go func() {
		defer close(t.events)
		defer close(t.seen)
		for ev := range e.Events() {
			t.seen <- ev
			t.events <- ev
		}
	}()
	return t
}

func (t *tap) Events() <-chan steps.Event { return t.events }

// waitFor reads the events the walkthrough got until one matches.
func (t *tap) waitFor(tb testing.TB, what string, match func(steps.Event) bool) {
	tb.Helper()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case ev, ok := <-t.seen:
			if !ok {
				tb.Fatalf("the run ended before %s", what)
			}
			if f, isFin := ev.(steps.StepFinished); isFin && f.Status == steps.Failed {
				tb.Errorf("step %s failed: %s", f.Step, f.Error)
			}
			if match(ev) {
				return
			}
		case <-timeout:
			tb.Fatalf("no %s within 3 minutes", what)
		}
	}
}

func passedStep(id string) func(steps.Event) bool {
	return func(ev steps.Event) bool {
		f, ok := ev.(steps.StepFinished)
		return ok && f.Step == id && f.Status == steps.Passed
	}
}

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
	eng := newTap(Start(context.Background(), sc, b, steps.WithLang("en")))
	t.Cleanup(func() {
		eng.Close()
		_ = b.Destroy(context.Background())
	})
	tm := teatest.NewTestModel(t, NewWalkthrough(eng), teatest.WithInitialTermSize(160, 50))

	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	eng.waitFor(t, "a cluster", passedStep("create-cluster"))
	pids := lb.Pids()
	if len(pids) != 2 {
		t.Fatalf("the cluster runs %d processes, want etcd and kube-apiserver", len(pids))
	}
	tm.Send(tea.KeyPressMsg{Code: 'a', Text: "a"})
	eng.waitFor(t, "the 401", passedStep("anonymous-api-unauthorized"))
	var sum steps.Summary
	eng.waitFor(t, "the summary", func(ev steps.Event) bool {
		s, ok := ev.(steps.Summary)
		sum = s
		return ok
	})

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
