package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

const forbiddenAPI = `forbidden: User "system:anonymous" cannot get path "/api"`

func TestWalkthroughPasses(t *testing.T) {
	h := newHarness(t, 160, 50)
	h.step(t, "create-cluster")
	h.press("a")
	h.engine.waitFor(t, "the summary", 30*time.Second, isSummary)
	h.press("q")
	out := h.frame(t)
	for _, want := range []string{forbiddenAPI, "default kube-node-lease kube-public kube-system", "401 Unauthorized"} {
		if !strings.Contains(out, want) {
			t.Errorf("the final frame lacks %q", want)
		}
	}
	golden.RequireEqual(t, out)
}

var anonymousOff = cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}

// toFailure runs the steps up to anonymous-api, which fails: anonymous
// auth was turned off behind the lab's back, so the 403 it wants is a 401.
func toFailure(t *testing.T, h *harness) {
	t.Helper()
	for _, id := range []string{"create-cluster", "sa-token", "api-with-token"} {
		h.step(t, id)
	}
	if err := h.backend.ReconfigureAPIServer(t.Context(), anonymousOff); err != nil {
		t.Fatal(err)
	}
	h.press("enter")
	h.engine.waitFor(t, "anonymous-api's failure", 30*time.Second, finished("anonymous-api", steps.Failed))
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
		if err := h.backend.RestoreAPIServer(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.press("r")
		h.engine.waitFor(t, "the re-run", 30*time.Second, finished("anonymous-api", steps.Passed))
		h.step(t, "anonymous-namespaces")
		golden.RequireEqual(t, h.quitFrame(t))
	})
}

func TestWalkthroughLongProgress(t *testing.T) {
	t.Run("first build", func(t *testing.T) {
		h := newHarness(t, 100, 30, clustertest.Hold(clustertest.OpCreate, make(chan struct{}), cluster.Progress{
			Phase: "build", Detail: "build kube-apiserver: k8s.io/kubernetes/pkg/controlplane/apiserver", Elapsed: 95300 * time.Millisecond,
			Count: 812, Total: 2143, Left: 367 * time.Second}))
		h.press("enter")
		h.engine.waitFor(t, "the build's progress", 30*time.Second, progressOf("create-cluster"))
		golden.RequireEqual(t, h.quitFrame(t))
	})
	t.Run("first download", func(t *testing.T) {
		h := newHarness(t, 100, 30, clustertest.Hold(clustertest.OpCreate, make(chan struct{}), cluster.Progress{
			Phase: "download", Detail: "envtest-v1.37.2-linux-amd64.tar.gz: 41.3 MB", Elapsed: 2400 * time.Millisecond}))
		h.press("enter")
		h.engine.waitFor(t, "the download's progress", 30*time.Second, progressOf("create-cluster"))
		golden.RequireEqual(t, h.quitFrame(t))
	})
	t.Run("apiserver restart", func(t *testing.T) {
		h := newHarness(t, 100, 40, holdRestart())
		h.press("a")
		h.engine.waitFor(t, "the restart's progress", 30*time.Second, progressOf("disable-anonymous"))
		golden.RequireEqual(t, h.quitFrame(t))
	})
}

// holdRestart keeps kube-apiserver restarting until the test ends.
func holdRestart() clustertest.Option {
	return clustertest.Hold(clustertest.OpReconfigure, make(chan struct{}), cluster.Progress{
		Phase: "wait", Detail: "polling /readyz as kubernetes-admin: GET /readyz 500", Elapsed: 2179 * time.Millisecond})
}

func TestWalkthroughResize(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"80x24", 80, 24}, {"160x50", 160, 50}, {"60x20", 60, 20}, {"80x16", 80, 16}} {
		t.Run(size.name, func(t *testing.T) {
			h := newHarness(t, 100, 40)
			for _, id := range []string{"create-cluster", "sa-token", "api-with-token", "anonymous-api"} {
				h.step(t, id)
			}
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
	h.engine.waitFor(t, "the scenario's start", 30*time.Second, isStarted)
	h.press("?")
	golden.RequireEqual(t, h.quitFrame(t))
}

func TestWalkthroughQuit(t *testing.T) {
	t.Run("between steps", func(t *testing.T) {
		h := newHarness(t, 100, 40)
		h.step(t, "create-cluster")
		h.press("q")
		// q at the gate stops the engine there: the next step is skipped,
		// not interrupted.
		evs := h.engine.waitEnd(t)
		var skipped *steps.StepFinished
		for _, ev := range evs {
			if f, ok := ev.(steps.StepFinished); ok && f.Step == "sa-token" {
				skipped = &f
			}
		}
		if skipped == nil || skipped.Status != steps.Skipped || skipped.Error != steps.ErrStopped.Error() {
			t.Errorf("sa-token ended as %+v, want skipped: %v", skipped, steps.ErrStopped)
		}
		if !h.final(t).QuitEarly() {
			t.Error("the walkthrough does not tell it was quit early")
		}
	})
	t.Run("after the engine's end", func(t *testing.T) {
		h := newHarness(t, 80, 24)
		h.press("a")
		h.engine.waitEnd(t)
		h.press("q")
		if h.final(t).QuitEarly() {
			t.Error("quitting after the run's end counts as early")
		}
	})
	t.Run("during a step", func(t *testing.T) {
		h := newHarness(t, 100, 40, holdRestart())
		h.press("a")
		h.engine.waitFor(t, "the restart's progress", 30*time.Second, progressOf("disable-anonymous"))
		h.press("q")
		// The walkthrough goes on taking events, showing the cleanup,
		// until the engine's last; then it ends by itself.
		evs := h.engine.waitEnd(t)
		var interrupted bool
		for _, ev := range evs {
			if f, ok := ev.(steps.StepFinished); ok && f.Step == "disable-anonymous" {
				interrupted = f.Status == steps.Failed && strings.HasPrefix(f.Error, "interrupted: ")
			}
		}
		if !interrupted {
			t.Errorf("disable-anonymous was not interrupted: %+v", evs)
		}
		golden.RequireEqual(t, h.frame(t))
	})
}

// TestOutcomeOfSeveralRequests: a step that sends several requests (the
// exposure check) is summed up in the step list by its check, not by
// whichever request came last; a step with one request by its answer.
func TestOutcomeOfSeveralRequests(t *testing.T) {
	verdict := steps.Check{Name: "anonymous exposure", Got: "rbac-limited: anonymous authentication is on (/api 403)", OK: true}
	api := steps.HTTPExchange{Path: "/api", Status: 403, Message: `forbidden: User "system:anonymous" cannot get path "/api"`}
	last := steps.HTTPExchange{Path: "/api/v1/namespaces/kube-public/configmaps/cluster-info", Status: 403, Message: `configmaps "cluster-info" is forbidden`}
	cases := []struct {
		Name  string
		items []steps.Event
		want  string
	}{
		{"several requests", []steps.Event{api, last, verdict}, "anonymous exposure: rbac-limited: anonymous authentication is on (/api 403)"},
		{"one request", []steps.Event{api, steps.Check{Name: "status", Got: "403", OK: true}}, `403 · forbidden: User "system:anonymous" cannot get path "/api"`},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if got := (Walkthrough{}).outcome(row{status: steps.Passed, items: tc.items}); got != tc.want {
				t.Errorf("outcome %q, want %q", got, tc.want)
			}
		})
	}
}
