package steps_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

// The engine's control flow, run on the fake backend: what a real
// apiserver answers is the e2e suites' business.

// recorder is a Sink that keeps every event; onEmit, when set, sees each
// one first (a test that acts in the middle of a step).
type recorder struct {
	events []steps.Event
	onEmit func(steps.Event)
}

func (r *recorder) Emit(e steps.Event) {
	if r.onEmit != nil {
		r.onEmit(e)
	}
	r.events = append(r.events, e)
}

func parse(t *testing.T, yaml string) *steps.Scenario {
	t.Helper()
	sc, err := steps.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse the test scenario: %v", err)
	}
	return sc
}

func newBackend(t *testing.T, opts ...clustertest.Option) *clustertest.Backend {
	t.Helper()
	b := clustertest.New(opts...)
	t.Cleanup(func() {
		if err := b.Destroy(context.Background()); err != nil {
			t.Errorf("destroy the fake cluster: %v", err)
		}
	})
	return b
}

// of returns the events of type E, in order.
func of[E steps.Event](events []steps.Event) []E {
	var out []E
	for _, e := range events {
		if v, ok := e.(E); ok {
			out = append(out, v)
		}
	}
	return out
}

// outcome is a StepFinished as the tests compare it.
type outcome struct {
	Step    string
	Cleanup bool
	Status  string
}

func outcomes(events []steps.Event) []outcome {
	var out []outcome
	for _, f := range of[steps.StepFinished](events) {
		out = append(out, outcome{f.Step, f.Cleanup, f.Status})
	}
	return out
}

func finishedStep(t *testing.T, events []steps.Event, id string) steps.StepFinished {
	t.Helper()
	var found []steps.StepFinished
	for _, f := range of[steps.StepFinished](events) {
		if f.Step == id {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		t.Fatalf("step %s did not finish; events: %+v", id, events)
	}
	return found[len(found)-1]
}

func checksOf(events []steps.Event, id string) []steps.Check {
	var out []steps.Check
	for _, c := range of[steps.Check](events) {
		if c.Step == id {
			out = append(out, c)
		}
	}
	return out
}

func wantOutcomes(t *testing.T, events []steps.Event, want []outcome) {
	t.Helper()
	if got := outcomes(events); !slices.Equal(got, want) {
		t.Errorf("steps finished as\n%+v\nwant\n%+v", got, want)
	}
}

func wantSummary(t *testing.T, got steps.Summary, passed, failed, skipped int) {
	t.Helper()
	if got.Passed != passed || got.Failed != failed || got.Skipped != skipped {
		t.Errorf("summary %d passed, %d failed, %d skipped; want %d, %d, %d", got.Passed, got.Failed, got.Skipped, passed, failed, skipped)
	}
	if got.OK() != (failed == 0) {
		t.Errorf("summary OK() = %v with %d failed", got.OK(), got.Failed)
	}
}

// The engine's events for the article's scenario on the fake: every check
// holds, and the step that needs a kubelet says why it is skipped.
func TestRunArticleScenario(t *testing.T) {
	sc, err := steps.Load("anonymous-auth")
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	rec := &recorder{}
	sum := steps.Run(t.Context(), sc, b, rec)
	for _, f := range of[steps.StepFinished](rec.events) {
		switch {
		case f.Status == steps.Failed:
			t.Errorf("step %s failed: %s %+v", f.Step, f.Error, checksOf(rec.events, f.Step))
		case f.Status == steps.Skipped && f.Error == "":
			t.Errorf("step %s was skipped without a reason", f.Step)
		}
	}
	if n := len(of[steps.Check](rec.events)); n == 0 {
		t.Error("no check ran")
	}
	if sum.Failed != 0 || sum.Passed == 0 {
		t.Errorf("summary %+v", sum)
	}
	if c := b.Calls(); c.Create != 1 || c.Reconfigure != 1 || c.Destroy != 1 || c.Restore != 0 {
		t.Errorf("backend calls %+v, want one create, reconfigure and destroy, no restore (the cluster is deleted)", c)
	}
	if _, ok := rec.events[0].(steps.ScenarioStarted); !ok {
		t.Errorf("first event %T, want ScenarioStarted", rec.events[0])
	}
	if _, ok := rec.events[len(rec.events)-1].(steps.Summary); !ok {
		t.Errorf("last event %T, want Summary", rec.events[len(rec.events)-1])
	}
}

const gateScenario = `
name: gate
title: the gate
steps:
  - {id: create, title: create, cluster: create}
  - id: anonymous-401
    title: anonymous gets 401
    request: {as: anonymous, path: /api}
    expect: {status: 401}
  - id: admin
    title: admin gets 200
    request: {as: admin, path: /api}
    expect: {status: 200}
  - id: last
    title: never reached
    request: {as: admin, path: /version}
cleanup:
  - {id: destroy, title: destroy, cluster: destroy}
`

// until reads the Stepper's events up to the first that matches.
func until(t *testing.T, s *steps.Stepper, what string, match func(steps.Event) bool) []steps.Event {
	t.Helper()
	var seen []steps.Event
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-s.Events():
			if !ok {
				t.Fatalf("the run ended before %s; events: %+v", what, seen)
			}
			seen = append(seen, e)
			if match(e) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no %s within 30s; events: %+v", what, seen)
		}
	}
}

func finishedAt(index int) func(steps.Event) bool {
	return func(e steps.Event) bool {
		f, ok := e.(steps.StepFinished)
		return ok && !f.Cleanup && f.Index == index
	}
}

func isSummary(e steps.Event) bool { _, ok := e.(steps.Summary); return ok }

// The Stepper runs nothing until told; a failed step runs again on Rerun
// without moving the position; Rerun of a step that did not fail runs the
// next one; Stop skips the rest and cleanup runs.
func TestStepperGate(t *testing.T) {
	b := newBackend(t)
	s := steps.Start(t.Context(), parse(t, gateScenario), b)
	var all []steps.Event
	all = append(all, until(t, s, "the scenario's start", func(e steps.Event) bool { _, ok := e.(steps.ScenarioStarted); return ok })...)
	if c := b.Calls(); c.Create != 0 {
		t.Fatalf("the cluster was created before Next: %+v", c)
	}

	s.Next()
	all = append(all, until(t, s, "step 0", finishedAt(0))...)
	s.Next()
	all = append(all, until(t, s, "step 1", finishedAt(1))...)
	if f := finishedStep(t, all, "anonymous-401"); f.Status != steps.Failed {
		t.Fatalf("anonymous-401 %s, want failed: anonymous auth is on", f.Status)
	}
	if cs := checksOf(all, "anonymous-401"); len(cs) != 1 || cs[0].OK || cs[0].Want != "401" || cs[0].Got != "403" {
		t.Errorf("checks %+v, want one failed: want 401, got 403", cs)
	}

	// What the step wants becomes true; the re-run sees it.
	if err := b.ReconfigureAPIServer(t.Context(), cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}); err != nil {
		t.Fatal(err)
	}
	s.Rerun(1)
	all = append(all, until(t, s, "the re-run of step 1", finishedAt(1))...)
	if f := finishedStep(t, all, "anonymous-401"); f.Status != steps.Passed {
		t.Fatalf("re-run of anonymous-401 %s, want passed", f.Status)
	}
	s.Rerun(0) // passed: not run again, the next step runs
	all = append(all, until(t, s, "step 2", finishedAt(2))...)
	s.Stop()
	all = append(all, until(t, s, "the summary", isSummary)...)
	if _, open := <-s.Events(); open {
		t.Error("the events channel is open after the summary")
	}

	var ran []int
	for _, st := range of[steps.StepStarted](all) {
		if !st.Cleanup {
			ran = append(ran, st.Index)
		}
	}
	if want := []int{0, 1, 1, 2}; !slices.Equal(ran, want) {
		t.Errorf("main steps started %v, want %v", ran, want)
	}
	wantOutcomes(t, all, []outcome{
		{"create", false, steps.Passed}, {"anonymous-401", false, steps.Failed}, {"anonymous-401", false, steps.Passed},
		{"admin", false, steps.Passed}, {"last", false, steps.Skipped}, {"destroy", true, steps.Passed},
	})
	if f := finishedStep(t, all, "last"); f.Error != steps.ErrStopped.Error() {
		t.Errorf("the step after Stop was skipped with %q, want %q", f.Error, steps.ErrStopped)
	}
	wantSummary(t, s.Summary(), 4, 0, 1)
	if c := b.Calls(); c.Destroy != 1 {
		t.Errorf("backend calls %+v, want the cleanup's destroy", c)
	}
}

// All runs every remaining step without another order.
func TestStepperAll(t *testing.T) {
	b := newBackend(t)
	s := steps.Start(t.Context(), parse(t, gateScenario), b)
	s.Next()
	first := until(t, s, "step 0", finishedAt(0))
	s.All()
	rest := until(t, s, "the summary", isSummary)
	wantOutcomes(t, append(first, rest...), []outcome{
		{"create", false, steps.Passed}, {"anonymous-401", false, steps.Failed}, {"admin", false, steps.Passed},
		{"last", false, steps.Passed}, {"destroy", true, steps.Passed},
	})
	wantSummary(t, s.Summary(), 4, 1, 0)
}

const cleanupSteps = `
cleanup:
  - id: revoke
    title: revoke
    delete: {manifests: [my-cluster-role-binding.yaml, my-cluster-role.yaml]}
  - id: restore
    title: restore
    apiserverFlags: {restore: true}
  - {id: destroy, title: destroy, cluster: destroy}
`

// A failed check does not stop the run; a step that could not run skips
// the rest. Cleanup runs either way, as does the safety net.
func TestRunAfterFailure(t *testing.T) {
	const scenario = `
name: failures
title: failures
steps:
  - {id: create, title: create, cluster: create}
  - id: failed-check
    title: a check fails
    request: {as: anonymous, path: /api}
    expect: {status: 200}
  - id: grant
    title: grant
    apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}
  - id: refused
    title: kube-apiserver refuses the flag
    apiserverFlags: {set: [--anonymous-auth=false]}
  - id: after
    title: after
    request: {as: admin, path: /api}
`
	b := newBackend(t, clustertest.RefuseFlags("E0101 command failed"))
	rec := &recorder{}
	sum := steps.Run(t.Context(), parse(t, scenario+cleanupSteps), b, rec)
	wantOutcomes(t, rec.events, []outcome{
		{"create", false, steps.Passed}, {"failed-check", false, steps.Failed}, {"grant", false, steps.Passed},
		{"refused", false, steps.Failed}, {"after", false, steps.Skipped},
		{"revoke", true, steps.Passed}, {"restore", true, steps.Skipped}, {"destroy", true, steps.Passed},
	})
	if f := finishedStep(t, rec.events, "refused"); !strings.Contains(f.Error, "E0101 command failed") {
		t.Errorf("the refused step's error %q does not show kube-apiserver's own line", f.Error)
	}
	if f := finishedStep(t, rec.events, "after"); !strings.Contains(f.Error, `"refused"`) {
		t.Errorf("the skip's reason %q does not name the step that could not run", f.Error)
	}
	wantSummary(t, sum, 4, 2, 2)
	if c := b.Calls(); c.Destroy != 1 {
		t.Errorf("backend calls %+v, want the cleanup's destroy", c)
	}
}

// Ctrl-C in the middle of a step interrupts it, skips the rest, and the
// cleanup still runs on a context of its own. When the cluster is deleted
// next, only the deletion runs (all the run changed goes with it); a kept
// cluster gets the whole cleanup.
func TestRunCancelled(t *testing.T) {
	const scenario = `
name: cancelled
title: cancelled
steps:
  - {id: create, title: create, cluster: create}
  - id: grant
    title: grant
    apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}
  - id: disable
    title: disable anonymous auth
    apiserverFlags: {set: [--anonymous-auth=false]}
  - {id: after, title: after, request: {as: admin, path: /api}}
`
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			b := newBackend(t, clustertest.Hold(clustertest.OpReconfigure, make(chan struct{}), cluster.Progress{Phase: "wait", Detail: "polling /readyz"}))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			rec := &recorder{onEmit: func(e steps.Event) {
				if p, ok := e.(steps.Progress); ok && p.Step == "disable" {
					cancel() // the restart is under way
				}
			}}
			sum := steps.Run(ctx, parse(t, scenario+cleanupSteps), b, rec, steps.WithKeepCluster(keep))
			want := []outcome{
				{"create", false, steps.Passed}, {"grant", false, steps.Passed}, {"disable", false, steps.Failed}, {"after", false, steps.Skipped},
				{"revoke", true, steps.Skipped}, {"restore", true, steps.Skipped}, {"destroy", true, steps.Passed},
			}
			if keep {
				want[4].Status, want[5].Status, want[6].Status = steps.Passed, steps.Passed, steps.Skipped
			}
			wantOutcomes(t, rec.events, want)
			if f := finishedStep(t, rec.events, "disable"); !strings.HasPrefix(f.Error, "interrupted: ") || !strings.Contains(f.Error, context.Canceled.Error()) {
				t.Errorf("the interrupted step's error is %q", f.Error)
			}
			if f := finishedStep(t, rec.events, "after"); f.Error != "interrupted" {
				t.Errorf("the step after Ctrl-C was skipped with %q, want interrupted", f.Error)
			}
			if f := finishedStep(t, rec.events, "revoke"); !keep && !strings.Contains(f.Error, "the cluster is deleted next") {
				t.Errorf("revoke skipped with %q, want the reason", f.Error)
			}
			if keep {
				wantSummary(t, sum, 4, 1, 2)
			} else {
				wantSummary(t, sum, 3, 1, 3)
			}
		})
	}
}

// apiserverGet sends an anonymous request to the fake, as a person with
// curl --cacert would.
func apiserverGet(t *testing.T, b *clustertest.Backend, path string) int {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.Info().CAData) {
		t.Fatal("the fake's CA is not PEM")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Get(b.Info().URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A scenario that opens the cluster and does not close it again (no
// cleanup, or --keep): the safety net revokes the grant and puts the flags
// back.
func TestSafetyNet(t *testing.T) {
	const opens = `
name: opens
title: opens and forgets
steps:
  - {id: create, title: create, cluster: create}
  - id: grant
    title: grant
    apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}
  - id: namespaces
    title: anonymous lists namespaces
    request: {as: anonymous, path: /api/v1/namespaces}
    expect: {status: 200}
  - id: disable
    title: disable anonymous auth
    apiserverFlags: {set: [--anonymous-auth=false]}
  - id: unauthorized
    title: anonymous gets 401
    request: {as: anonymous, path: /api}
    expect: {status: 401}
`
	cases := []struct {
		Name    string
		Cleanup string
		Opts    []steps.Option
	}{
		{"no cleanup", "", nil},
		{"the cluster is kept", "cleanup:\n  - {id: destroy, title: destroy, cluster: destroy}\n", []steps.Option{steps.WithKeepCluster(true)}},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			rec := &recorder{}
			sum := steps.Run(t.Context(), parse(t, opens+tc.Cleanup), b, rec, tc.Opts...)
			if sum.Failed != 0 {
				t.Fatalf("summary %+v; events %+v", sum, rec.events)
			}
			if c := b.Calls(); c.Restore != 1 || c.Destroy != 0 {
				t.Errorf("backend calls %+v, want one restore and no destroy", c)
			}
			args, err := b.APIServerArgs(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if base := b.BaseArgs(); !slices.Equal(args, base) {
				t.Errorf("kube-apiserver's flags after the run %v, want the original %v", args, base)
			}
			if objs := b.Objects(); slices.ContainsFunc(objs, func(o string) bool { return strings.HasPrefix(o, "clusterrole") }) {
				t.Errorf("the grant is still there: %v", objs)
			}
			if code := apiserverGet(t, b, "/api/v1/namespaces"); code != http.StatusForbidden {
				t.Errorf("anonymous GET /api/v1/namespaces after the run: %d, want 403", code)
			}
			var safety []steps.Log
			for _, l := range of[steps.Log](rec.events) {
				if l.Step == "safety" {
					safety = append(safety, l)
				}
			}
			if len(safety) == 0 {
				t.Error("the safety net said nothing of what it did")
			}
		})
	}
}

// rolledBack and errorContains are checks of an apiserverFlags step.
func TestRollbackExpectations(t *testing.T) {
	const lastError = `E0101 "command failed" err="anonymous: Forbidden: --anonymous-auth flag cannot be set"`
	cases := []struct {
		Name   string
		Refuse bool
		Expect string
		Status string
		Checks []bool // the OK of each check, in order
	}{
		{"refused as expected", true, `{rolledBack: true, errorContains: "cannot be set"}`, steps.Passed, []bool{true, true}},
		{"refused for another reason", true, `{rolledBack: true, errorContains: "no such flag"}`, steps.Failed, []bool{true, false}},
		{"accepted though a refusal was expected", false, `{rolledBack: true}`, steps.Failed, []bool{false}},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			var opts []clustertest.Option
			if tc.Refuse {
				opts = append(opts, clustertest.RefuseFlags(lastError))
			}
			b := newBackend(t, opts...)
			rec := &recorder{}
			steps.Run(t.Context(), parse(t, `
name: rollback
title: rollback
steps:
  - {id: create, title: create, cluster: create}
  - id: flags
    title: flags
    apiserverFlags: {set: [--anonymous-auth=false]}
    expect: `+tc.Expect+`
`), b, rec)
			if f := finishedStep(t, rec.events, "flags"); f.Status != tc.Status || f.Error != "" {
				t.Errorf("flags step %s (error %q), want %s with no error: the checks decide", f.Status, f.Error, tc.Status)
			}
			var got []bool
			for _, c := range checksOf(rec.events, "flags") {
				got = append(got, c.OK)
				if strings.Contains(c.Want, "no such flag") && c.Got != lastError {
					t.Errorf("errorContains check got %q, want kube-apiserver's line %q", c.Got, lastError)
				}
			}
			if !slices.Equal(got, tc.Checks) {
				t.Errorf("checks %v, want %v", got, tc.Checks)
			}
		})
	}
}

// A step that would open a cluster the lab did not create refuses, unless
// the person allowed it; nothing reaches the cluster.
// TestMayWrite: on a cluster the lab did not create, a step that writes is
// skipped (saying why, and what the guard found it would open) unless the
// opt-in allows it; allowed, it reaches the cluster and the safety net
// revokes it.
func TestMayWrite(t *testing.T) {
	const head = `
name: open
title: open
steps:
  - {id: create, title: create, cluster: create}
`
	cases := []struct {
		Name  string
		Step  string
		Allow bool
		// Why is in the skip's reason (besides the opt-in flag).
		Why string
		// done reports whether the step reached the cluster (asked when it
		// ends: the safety net undoes it after).
		done func(*clustertest.Backend) bool
	}{
		{"flags", "  - {id: open, title: open, apiserverFlags: {set: [--anonymous-auth=false]}}\n", false, "change kube-apiserver's flags",
			func(b *clustertest.Backend) bool { return b.Calls().Reconfigure > 0 }},
		{"flags allowed", "  - {id: open, title: open, apiserverFlags: {set: [--anonymous-auth=false]}}\n", true, "",
			func(b *clustertest.Backend) bool { return b.Calls().Reconfigure > 0 }},
		{"a binding to system:anonymous", "  - {id: open, title: open, apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}}\n", false,
			`it would also open the cluster to anonymous users: ClusterRoleBinding "my-cluster-role-binding" binds ClusterRole "my-cluster-role" to User "system:anonymous"`,
			func(b *clustertest.Backend) bool { return len(b.Objects()) > 0 }},
		{"a binding allowed", "  - {id: open, title: open, apply: {manifests: [my-cluster-role.yaml, my-cluster-role-binding.yaml]}}\n", true, "",
			func(b *clustertest.Backend) bool { return len(b.Objects()) > 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, clustertest.NotCreatedByLab())
			reached := false
			rec := &recorder{onEmit: func(e steps.Event) {
				if f, ok := e.(steps.StepFinished); ok && f.Step == "open" {
					reached = tc.done(b)
				}
			}}
			steps.Run(t.Context(), parse(t, head+tc.Step), b, rec, steps.WithAllowOpen(tc.Allow))
			f := finishedStep(t, rec.events, "open")
			if tc.Allow {
				if f.Status != steps.Passed || !reached {
					t.Errorf("allowed: step %s (%s), reached the cluster: %v", f.Status, f.Error, reached)
				}
				if len(b.Objects()) > 0 {
					t.Errorf("the safety net left %v on a cluster that outlives the run", b.Objects())
				}
				return
			}
			if f.Status != steps.Skipped || !strings.Contains(f.Error, "read-only") || !strings.Contains(f.Error, tc.Why) ||
				!strings.Contains(f.Error, "--i-understand-this-opens-the-cluster") {
				t.Errorf("refused step %s with %q, want skipped, saying %q and naming the flag that allows it", f.Status, f.Error, tc.Why)
			}
			if reached {
				t.Error("the refused step reached the cluster")
			}
		})
	}
}

// When the cluster cannot be created, nothing that needs it runs: the
// cleanup's own cluster step still does.
func TestCreateFails(t *testing.T) {
	errNoRuntime := errors.New("create the cluster: no container runtime")
	b := newBackend(t, clustertest.FailCreate(errNoRuntime))
	rec := &recorder{}
	sum := steps.Run(t.Context(), parse(t, gateScenario[:strings.Index(gateScenario, "cleanup:")]+cleanupSteps), b, rec)
	wantOutcomes(t, rec.events, []outcome{
		{"create", false, steps.Failed}, {"anonymous-401", false, steps.Skipped}, {"admin", false, steps.Skipped}, {"last", false, steps.Skipped},
		{"revoke", true, steps.Skipped}, {"restore", true, steps.Skipped}, {"destroy", true, steps.Passed},
	})
	if f := finishedStep(t, rec.events, "create"); f.Error != errNoRuntime.Error() {
		t.Errorf("create failed with %q, want the backend's %q", f.Error, errNoRuntime)
	}
	for _, id := range []string{"revoke", "restore"} {
		if f := finishedStep(t, rec.events, id); f.Error == "" {
			t.Errorf("cleanup step %s skipped without a reason", id)
		}
	}
	wantSummary(t, sum, 1, 1, 5)
	if c := b.Calls(); c.Create != 1 || c.Destroy != 1 || c.Reconfigure != 0 {
		t.Errorf("backend calls %+v", c)
	}
}

// The token a step obtains works, and no event carries it.
func TestTokenNeverShown(t *testing.T) {
	b := newBackend(t)
	rec := &recorder{}
	sum := steps.Run(t.Context(), parse(t, `
name: token
title: token
steps:
  - {id: create, title: create, cluster: create}
  - {id: token, title: token, serviceAccountToken: {saveAs: sa-token}}
  - id: with-token
    title: GET /api with the token
    request: {token: sa-token, path: /api}
    expect:
      status: 200
      jsonpath: [{path: "{.kind}", equals: APIVersions}]
  - id: namespaces-with-token
    title: the ServiceAccount may not list namespaces
    request: {token: sa-token, path: /api/v1/namespaces}
    expect: {status: 403, messageContains: 'User "system:serviceaccount:default:default" cannot list'}
`), b, rec)
	if sum.Failed != 0 {
		t.Fatalf("summary %+v; events %+v", sum, rec.events)
	}
	tokens := b.Tokens()
	if len(tokens) != 1 {
		t.Fatalf("the fake issued %d tokens, want 1", len(tokens))
	}
	for _, e := range rec.events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), tokens[0]) {
			t.Errorf("%s event shows the token: %s", e.EventName(), data)
		}
	}
}
