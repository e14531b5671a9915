package tui

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

// The walkthrough's tests drive the real engine (steps.Start) on the fake
// backend clustertest: the frames show what the engine emits, so a renamed
// check or a reworded log in package steps changes them.

// testClock fixes the running step's timer and the fake's token expiry.
func testClock() time.Time { return time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC) }

// Frames under test are deterministic: a fixed clock, a spinner of one
// frame, no colours (NO_COLOR also fixes the markdown style).
var testOptions = []Option{
	WithClock(testClock),
	WithSpinner(spinner.Spinner{Frames: []string{"*"}, FPS: time.Second}),
}

// relay passes the engine's events on to the walkthrough, rewritten, one
// at a time: each is followed by a syncEvent and only then offered to the
// test on seen. The walkthrough takes its next event only after Update
// has been through the last one, so an event the test sees has been
// applied.
type relay struct {
	*Engine
	out      chan steps.Event
	seen     chan steps.Event
	stop     chan struct{}
	stopOnce sync.Once
}

// syncEvent is an event the walkthrough ignores; see relay.
type syncEvent struct{}

func (syncEvent) EventName() string { return "sync" }

func newRelay(e *Engine, rewrite func(steps.Event) steps.Event) *relay {
	r := &relay{Engine: e, out: make(chan steps.Event), seen: make(chan steps.Event, 4096), stop: make(chan struct{})}
	go func() {
		defer close(r.seen)
		defer close(r.out)
		for ev := range e.Events() {
			ev = rewrite(ev)
			for _, out := range []steps.Event{ev, syncEvent{}} {
				select {
				case r.out <- out:
				case <-r.stop:
					return
				}
			}
			r.seen <- ev
		}
	}()
	return r
}

// Events implements Controller.
func (r *relay) Events() <-chan steps.Event { return r.out }

// detach stops relaying: the program has ended and takes no more events.
func (r *relay) detach() { r.stopOnce.Do(func() { close(r.stop) }) }

// waitFor reads the events the walkthrough has applied until one matches,
// and returns them.
func (r *relay) waitFor(tb testing.TB, what string, within time.Duration, match func(steps.Event) bool) []steps.Event {
	tb.Helper()
	var got []steps.Event
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-r.seen:
			if !ok {
				tb.Fatalf("the run ended before %s", what)
			}
			got = append(got, ev)
			if match(ev) {
				return got
			}
		case <-timeout:
			tb.Fatalf("no %s within %s", what, within)
		}
	}
}

// waitEnd reads the events until the engine's last one.
func (r *relay) waitEnd(tb testing.TB) []steps.Event {
	tb.Helper()
	var got []steps.Event
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-r.seen:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			tb.Fatal("the run did not end within 30s")
		}
	}
}

// stable makes the fake's events the same on every run: its port and its
// directory become fixed ones, the durations 42 ms. A Progress keeps its
// elapsed time: frames show one only while a clustertest.Hold keeps it,
// and the test fixes what that reports.
func stable(b *clustertest.Backend) func(steps.Event) steps.Event {
	return func(ev steps.Event) steps.Event {
		if info := b.Info(); info.URL != "" {
			ev = steps.MapStrings(ev, strings.NewReplacer(
				strings.TrimPrefix(info.URL, "https://"), "127.0.0.1:6443",
				filepath.Dir(info.CAFile), "/tmp/anonlab-clustertest",
			).Replace)
		}
		switch e := ev.(type) {
		case steps.StepFinished:
			e.DurationMS = 42
			return e
		case steps.HTTPExchange:
			e.DurationMS = 42
			return e
		case steps.Summary:
			e.DurationMS = 42
			return e
		}
		return ev
	}
}

// startEngine starts the engine on sc and b, relayed with stable events;
// the engine, its cleanup and the cluster end with the test.
func startEngine(t *testing.T, sc *steps.Scenario, b *clustertest.Backend) *relay {
	r := newRelay(Start(context.Background(), sc, b), stable(b))
	t.Cleanup(func() {
		r.detach()
		r.Close()
		if err := b.Destroy(context.Background()); err != nil {
			t.Errorf("destroy the fake cluster: %v", err)
		}
	})
	return r
}

func article(tb testing.TB) *steps.Scenario {
	tb.Helper()
	sc, err := steps.LoadFile("testdata/article.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

func newBackend(opts ...clustertest.Option) *clustertest.Backend {
	return clustertest.New(append([]clustertest.Option{clustertest.WithClock(testClock)}, opts...)...)
}

type harness struct {
	*teatest.TestModel
	engine  *relay
	backend *clustertest.Backend
}

// newHarness runs testdata/article.yaml on the fake through the
// walkthrough, in a terminal of width×height.
func newHarness(t *testing.T, width, height int, opts ...clustertest.Option) *harness {
	t.Setenv("NO_COLOR", "1")
	b := newBackend(opts...)
	r := startEngine(t, article(t), b)
	tm := teatest.NewTestModel(t, NewWalkthrough(r, testOptions...),
		teatest.WithInitialTermSize(width, height),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	return &harness{TestModel: tm, engine: r, backend: b}
}

// press sends a key as the terminal would.
func (h *harness) press(keys ...string) {
	for _, k := range keys {
		switch k {
		case "enter":
			h.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
		case "ctrl+c":
			h.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
		default:
			h.Send(tea.KeyPressMsg{Code: rune(k[0]), Text: k})
		}
	}
}

// step presses enter and waits for the step to finish.
func (h *harness) step(t *testing.T, id string) {
	t.Helper()
	h.press("enter")
	h.engine.waitFor(t, id, 30*time.Second, finished(id, ""))
}

// frame is the last frame once the program has ended, as plain text.
func (h *harness) frame(t *testing.T) string {
	t.Helper()
	return plain(h.final(t).View().Content)
}

func (h *harness) final(t *testing.T) Walkthrough {
	t.Helper()
	m, ok := h.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Walkthrough)
	if !ok {
		t.Fatalf("the final model is not the walkthrough")
	}
	return m
}

// quitFrame ends the program without the walkthrough's own quit, and
// returns the frame it left.
func (h *harness) quitFrame(t *testing.T) string {
	t.Helper()
	if err := h.Quit(); err != nil {
		t.Fatal(err)
	}
	return h.frame(t)
}

func plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// finished matches the end of step id, with status when it is not "".
func finished(id, status string) func(steps.Event) bool {
	return func(ev steps.Event) bool {
		f, ok := ev.(steps.StepFinished)
		return ok && f.Step == id && (status == "" || f.Status == status)
	}
}

// progressOf matches a progress report of step id.
func progressOf(id string) func(steps.Event) bool {
	return func(ev steps.Event) bool {
		p, ok := ev.(steps.Progress)
		return ok && p.Step == id
	}
}

func isStarted(ev steps.Event) bool { _, ok := ev.(steps.ScenarioStarted); return ok }

func isSummary(ev steps.Event) bool { _, ok := ev.(steps.Summary); return ok }
