package tui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/anonlab/anonlab/steps"
)

// picked is a scenario the picker started, and the engine that runs it.
type picked struct {
	name   string
	engine *relay
}

func newPickerHarness(t *testing.T) (*teatest.TestModel, chan picked) {
	t.Setenv("NO_COLOR", "1")
	all, err := steps.List()
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan picked, 1)
	start := func(sc *steps.Scenario) Controller {
		r := startEngine(t, sc, newBackend())
		started <- picked{sc.Name, r}
		return r
	}
	tm := teatest.NewTestModel(t, NewPicker(all, "en", start, testOptions...),
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	return tm, started
}

func TestPicker(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		tm, _ := newPickerHarness(t)
		if err := tm.Quit(); err != nil {
			t.Fatal(err)
		}
		p, ok := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Picker)
		if !ok {
			t.Fatal("the final model is not the picker")
		}
		golden.RequireEqual(t, plain(p.View().Content))
	})
	t.Run("enter starts the walkthrough", func(t *testing.T) {
		tm, started := newPickerHarness(t)
		tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
		select {
		case p := <-started:
			if p.name != "anonymous-auth" {
				t.Fatalf("started %q, want anonymous-auth", p.name)
			}
			p.engine.waitFor(t, "the scenario's start", 30*time.Second, isStarted)
		case <-time.After(10 * time.Second):
			t.Fatal("enter started nothing")
		}
		if err := tm.Quit(); err != nil {
			t.Fatal(err)
		}
		w, ok := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Walkthrough)
		if !ok {
			t.Fatal("the final model is not the walkthrough")
		}
		golden.RequireEqual(t, plain(w.View().Content))
	})
}
