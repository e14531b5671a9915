package tui

import (
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/anonlab/anonlab/steps"
)

// Frames under test are deterministic: a fixed clock, a spinner of one
// frame, no colours (NO_COLOR also fixes the markdown style).
var testOptions = []Option{
	WithClock(func() time.Time { return time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC) }),
	WithSpinner(spinner.Spinner{Frames: []string{"*"}, FPS: time.Second}),
}

type harness struct {
	*teatest.TestModel
	engine    *fakeEngine
	closeOnce sync.Once
}

func newHarness(t *testing.T, width, height int) *harness {
	t.Setenv("NO_COLOR", "1")
	f := newFakeEngine()
	h := &harness{engine: f}
	h.TestModel = teatest.NewTestModel(t, NewWalkthrough(f, testOptions...),
		teatest.WithInitialTermSize(width, height),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	// The pending waitForEvent returns once the channel is closed.
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() { h.closeOnce.Do(func() { close(h.engine.events) }) }

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

// frame is the last frame once the program has ended, as plain text.
func (h *harness) frame(t *testing.T) string {
	t.Helper()
	m, ok := h.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Walkthrough)
	if !ok {
		t.Fatalf("the final model is not the walkthrough")
	}
	return plain(m.View().Content)
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

func summary(passed, failed, skipped int) []steps.Event {
	return []steps.Event{steps.Summary{Passed: passed, Failed: failed, Skipped: skipped, DurationMS: 8123}}
}

func TestWalkthroughPasses(t *testing.T) {
	h := newHarness(t, 160, 50)
	h.engine.emit(t, scenarioStarted(t))
	h.press("enter")
	h.engine.expect(t, "next")
	h.engine.emit(t, createCluster()...)
	h.press("a")
	h.engine.expect(t, "all")
	h.engine.emit(t, run(saToken(), apiWithToken(), anonymousAPI(), anonymousNamespaces(), grant(),
		anonymousNamespacesGranted(), disableAnonymous(), anonymousUnauthorized(), cleanup(), summary(11, 0, 1))...)
	out := h.quitFrame(t)
	for _, want := range []string{forbiddenAPI, "default kube-node-lease kube-public kube-system", "401 Unauthorized"} {
		if !strings.Contains(out, want) {
			t.Errorf("the final frame lacks %q", want)
		}
	}
	golden.RequireEqual(t, out)
}

// failAPIWithToken is api-with-token answered 401: the token was refused.
func failAPIWithToken() []steps.Event {
	return request(2, "api-with-token", "GET /api with the token → 200", "system:serviceaccount:default:default", "/api", 401,
		status(401, "Unauthorized", "Unauthorized"),
		steps.Check{Name: "status", Want: "200", Got: "401"},
		steps.Check{Name: "jsonpath {.kind}", Want: "APIVersions", Got: "Status"})
}

func toFailure(t *testing.T, h *harness) {
	h.engine.emit(t, scenarioStarted(t))
	for _, step := range [][]steps.Event{createCluster(), saToken(), failAPIWithToken()} {
		h.press("enter")
		h.engine.expect(t, "next")
		h.engine.emit(t, step...)
	}
}

func TestWalkthroughFailedCheck(t *testing.T) {
	t.Run("want and got", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		toFailure(t, h)
		golden.RequireEqual(t, h.quitFrame(t))
	})
	t.Run("r re-runs it", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		toFailure(t, h)
		h.press("r")
		h.engine.expect(t, "rerun 2")
		h.engine.emit(t, apiWithToken()...)
		h.press("enter")
		h.engine.expect(t, "next")
		golden.RequireEqual(t, h.quitFrame(t))
	})
}

func TestWalkthroughLongProgress(t *testing.T) {
	t.Run("first build", func(t *testing.T) {
		h := newHarness(t, 100, 30)
		h.engine.emit(t, scenarioStarted(t))
		h.press("enter")
		h.engine.expect(t, "next")
		h.engine.emit(t, started(0, "create-cluster", "Create a cluster"),
			steps.Progress{Step: "create-cluster", Phase: "build", Detail: "building kube-apiserver v1.37.2: k8s.io/kubernetes/pkg/controlplane/apiserver", ElapsedMS: 95_300})
		golden.RequireEqual(t, h.quitFrame(t))
	})
	t.Run("apiserver restart", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		h.engine.emit(t, scenarioStarted(t))
		h.press("a")
		h.engine.expect(t, "all")
		h.engine.emit(t, run(createCluster(), saToken(), apiWithToken(), anonymousAPI(), anonymousNamespaces(), grant(),
			anonymousNamespacesGranted(), disableAnonymousStart())...)
		golden.RequireEqual(t, h.quitFrame(t))
	})
}

func TestWalkthroughResize(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"80x24", 80, 24}, {"160x50", 160, 50}, {"60x20", 60, 20}, {"80x16", 80, 16}} {
		t.Run(size.name, func(t *testing.T) {
			h := newHarness(t, 100, 40)
			h.engine.emit(t, scenarioStarted(t))
			h.press("a")
			h.engine.expect(t, "all")
			h.engine.emit(t, run(createCluster(), saToken(), apiWithToken(), anonymousAPI())...)
			h.Send(tea.WindowSizeMsg{Width: size.width, Height: size.height})
			out := h.quitFrame(t)
			for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if w := ansi.StringWidth(l); w > size.width {
					t.Errorf("line %d is %d wide: %q", i+1, w, l)
				}
				if i >= size.height {
					t.Errorf("line %d is below the window: %q", i+1, l)
				}
			}
			golden.RequireEqual(t, out)
		})
	}
}

func TestWalkthroughHelp(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.engine.emit(t, scenarioStarted(t))
	h.press("?")
	golden.RequireEqual(t, h.quitFrame(t))
}

func TestWalkthroughQuit(t *testing.T) {
	t.Run("between steps", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		h.engine.emit(t, scenarioStarted(t))
		h.press("enter")
		h.engine.expect(t, "next")
		h.engine.emit(t, createCluster()...)
		h.press("q")
		h.engine.expect(t, "stop")
	})
	t.Run("after the engine's end", func(t *testing.T) {
		h := newHarness(t, 80, 24)
		h.engine.emit(t, scenarioStarted(t))
		h.close()
		h.press("q")
		h.frame(t) // returns once the program has ended
	})
	t.Run("during a step", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		h.engine.emit(t, scenarioStarted(t))
		h.press("a")
		h.engine.expect(t, "all")
		h.engine.emit(t, run(createCluster(), saToken(), apiWithToken(), anonymousAPI(), anonymousNamespaces(), grant(),
			anonymousNamespacesGranted(), disableAnonymousStart())...)
		h.press("q")
		h.engine.expect(t, "interrupt")
		// The walkthrough goes on taking events, showing the cleanup,
		// until the engine's last.
		h.engine.emit(t, run([]steps.Event{
			steps.StepFinished{Step: "disable-anonymous", Index: 7, Status: steps.Failed, Error: "interrupted: wait for kube-apiserver: context canceled", DurationMS: 1250},
			steps.StepFinished{Step: "anonymous-api-unauthorized", Index: 8, Status: steps.Skipped, Error: "interrupted"},
		}, cleanup(), summary(9, 1, 2))...)
		h.close()
		golden.RequireEqual(t, h.frame(t))
	})
}
