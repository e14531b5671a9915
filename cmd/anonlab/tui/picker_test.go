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

func newPickerHarness(t *testing.T) (*teatest.TestModel, *fakeEngine, chan string) {
	t.Setenv("NO_COLOR", "1")
	all, err := steps.List()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeEngine()
	t.Cleanup(func() { close(f.events) })
	picked := make(chan string, 1)
	start := func(sc *steps.Scenario) Controller {
		picked <- sc.Name
		return f
	}
	tm := teatest.NewTestModel(t, NewPicker(all, "en", start, testOptions...),
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	return tm, f, picked
}

func TestPicker(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		tm, _, _ := newPickerHarness(t)
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
		tm, f, picked := newPickerHarness(t)
		tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
		select {
		case name := <-picked:
			if name != "anonymous-auth" {
				t.Fatalf("started %q, want anonymous-auth", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("enter started nothing")
		}
		f.emit(t, scenarioStarted(t))
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
