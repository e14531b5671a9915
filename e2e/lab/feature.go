package lab

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/anonlab/anonlab/e2e/attendee"
	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/report"
)

// Feature turns a scenario into an e2e-framework feature that the lab's
// engine runs on the cluster stored in the context under clusterName (see
// Provider). The feature is named after the scenario and labelled
// scenario=<name>; each step is an assessment named by its id, and each
// cleanup step a teardown. The scenario's own "cluster: destroy" is
// skipped: the suite owns the cluster.
func Feature(sc *steps.Scenario, clusterName string) *features.FeatureBuilder {
	return feature(&run{scenario: sc, cluster: clusterName}, sc.Name)
}

// HandsOnFeature is Feature in hands-on mode: an attendee in bash types, as
// shown after eval "$(anonlab env)", the command of each step the lab waits
// for (anonlab is the binary whose env it evaluates), and the lab verifies
// each by what it observes. The feature is named <scenario>-hands-on and
// labelled mode=hands-on.
func HandsOnFeature(sc *steps.Scenario, clusterName, anonlab string) *features.FeatureBuilder {
	return feature(&run{scenario: sc, cluster: clusterName, anonlab: anonlab}, sc.Name+"-hands-on").WithLabel("mode", "hands-on")
}

func feature(r *run, name string) *features.FeatureBuilder {
	sc := r.scenario
	f := features.NewWithDescription(name, sc.Title.In("en")).
		WithLabel("scenario", sc.Name).
		WithSetup("start", r.start)
	for _, st := range sc.Steps {
		f = f.AssessWithDescription(st.ID, st.Title.In("en"), r.assess(st))
	}
	for _, st := range sc.Cleanup {
		f = f.WithTeardown(st.ID, r.cleanup(st))
	}
	return f
}

// run is one run of a scenario's feature. Its steps are called one after
// the other by e2e-framework, so it needs no lock.
type run struct {
	scenario *steps.Scenario
	cluster  string
	// anonlab, in hands-on mode, is the binary the attendee's shell runs
	// `anonlab env` with; attendee is that shell.
	anonlab  string
	attendee *attendee.Shell

	stepper    *steps.Stepper
	text       *report.Text
	transcript bytes.Buffer // text's output, logged on the current test
	// waiting is true when the engine waits for Next: before the first
	// step and after each step that ran. (After a step that could not run
	// it skips the rest instead; the one Next it never reads is harmless.)
	waiting  bool
	running  string // the step that started last
	stopped  bool
	finished map[string]steps.StepFinished // by step id
	failed   map[string][]steps.Check      // failed checks by step id
	reported map[string]bool               // cleanup steps reported
	summary  *steps.Summary
}

func (r *run) start(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	c, ok := envfuncs.GetClusterFromContext(ctx, r.cluster)
	if !ok {
		t.Fatalf("no cluster %q in the context: create it in env.Setup with envfuncs.CreateClusterWithOpts(lab.NewProvider(...), %[1]q)", r.cluster)
	}
	p, ok := c.(*Provider)
	if !ok {
		t.Fatalf("cluster %q: want a *lab.Provider, got %T", r.cluster, c)
	}
	*r = run{scenario: r.scenario, cluster: r.cluster, anonlab: r.anonlab, waiting: true,
		finished: map[string]steps.StepFinished{}, failed: map[string][]steps.Check{}, reported: map[string]bool{}}
	r.text = report.NewText(&r.transcript, &r.transcript, report.WithBodyLines(20))
	opts := []steps.Option{steps.WithKeepCluster(true)}
	if r.anonlab != "" {
		path, err := attendee.KubectlPath(cluster.DefaultKubernetesVersion)
		if err != nil {
			t.Fatal(err)
		}
		if r.attendee, err = attendee.Start(r.anonlab, nil, path...); err != nil {
			t.Fatal(err)
		}
		if rec, ok := p.Backend().(cluster.Recorder); ok && rec.Entry() != nil {
			r.attendee.EnvArgs = []string{"--run", rec.Entry().ID}
		}
		t.Cleanup(func() { _ = r.attendee.Close() })
		opts = append(opts, steps.WithHandsOn(nil, 5*time.Minute))
	}
	r.stepper = steps.Start(ctx, r.scenario, p.Backend(), opts...)
	// A cleanup of the test rather than a teardown: it runs even when
	// e2e-framework skips the teardowns (--fail-fast), and the lab's
	// cleanup always runs (docs/architecture.md, Safety).
	t.Cleanup(func() { r.finish(t) })
	// The scenario's header comes before the engine waits for the first
	// step: log it on the feature, not on the first assessment.
	if !r.read(t) {
		t.Fatal("the run ended before it started")
	}
	return ctx
}

func (r *run) assess(st *steps.Step) features.Func {
	return func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
		fin, ok := r.await(t, st.ID)
		if !ok {
			t.Fatalf("step %s: the run ended before it finished", st.ID)
		}
		r.verdict(t, fin)
		if fin.Status == steps.Skipped {
			t.Skipf("step %s skipped: %s", st.ID, fin.Error)
		}
		return ctx
	}
}

// cleanup is a cleanup step's teardown.
func (r *run) cleanup(st *steps.Step) features.Func {
	return func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
		r.stop()
		r.reportCleanup(t, st.ID)
		return ctx
	}
}

// reportCleanup reports a cleanup step on the feature's test, without
// skipping or stopping it: what follows must still run.
func (r *run) reportCleanup(t *testing.T, id string) {
	r.reported[id] = true
	fin, ok := r.await(t, id)
	if !ok {
		t.Errorf("cleanup step %s: the run ended without it", id)
		return
	}
	r.verdict(t, fin)
	if fin.Status == steps.Skipped {
		t.Logf("--- cleanup %s: skipped: %s", id, fin.Error)
	} else {
		t.Logf("--- cleanup %s: %s", id, fin.Status)
	}
}

// finish lets the run end: it reports the cleanup steps no teardown did,
// and fails the feature when the engine's safety net could not undo what
// the scenario left open.
func (r *run) finish(t *testing.T) {
	r.stop()
	for _, st := range r.scenario.Cleanup {
		if !r.reported[st.ID] {
			r.reportCleanup(t, st.ID)
		}
	}
	for r.read(t) {
	}
	if r.summary == nil {
		t.Error("the run ended without a summary")
		return
	}
	failedSteps := 0
	for _, fin := range r.finished {
		if fin.Status == steps.Failed {
			failedSteps++
		}
	}
	if n := r.summary.Failed - failedSteps; n > 0 {
		t.Errorf("the safety net failed %d time(s) to undo what the scenario left (see the log above)", n)
	}
}

// stop lets the engine skip the steps no assessment asked for and run the
// cleanup steps.
func (r *run) stop() {
	if !r.stopped {
		r.stepper.Stop()
		r.stopped = true
	}
}

// await reads the run's events until step id has finished. Each time the
// engine waits, it lets the next step run: the steps before id run even
// when their own assessments were filtered out (--assess), since later
// steps depend on them.
func (r *run) await(t *testing.T, id string) (steps.StepFinished, bool) {
	for {
		if fin, ok := r.finished[id]; ok {
			return fin, true
		}
		if r.waiting && !r.stopped {
			r.stepper.Next()
			r.waiting = false
		}
		if !r.read(t) {
			return steps.StepFinished{}, false
		}
	}
}

// read takes the next event, records it and logs it on t as the text
// report shows it; false once the run has ended.
func (r *run) read(t *testing.T) bool {
	ev, ok := <-r.stepper.Events()
	if !ok {
		return false
	}
	r.text.Emit(ev)
	if s := strings.Trim(r.transcript.String(), "\n"); s != "" {
		t.Log(s)
	}
	r.transcript.Reset()
	switch ev := ev.(type) {
	case steps.StepStarted:
		r.running = ev.Step
	case steps.Check:
		if !ev.OK {
			r.failed[ev.Step] = append(r.failed[ev.Step], ev)
		}
	case steps.Waiting:
		out, status, err := r.attendee.Type(ev.Command)
		if err != nil {
			t.Fatalf("the attendee's shell: %v", err)
		}
		t.Logf("attendee$ %s\n%s\n(exit %d)", ev.Command, out, status)
	case steps.StepFinished:
		r.finished[ev.Step] = ev
		r.waiting = !ev.Cleanup && ev.Step == r.running
	case steps.Summary:
		r.summary = &ev
	}
	return true
}

// verdict fails t for each failed check of the step, with its want and
// got, and for the error that kept the step from running.
func (r *run) verdict(t *testing.T, fin steps.StepFinished) {
	for _, c := range r.failed[fin.Step] {
		t.Errorf("step %s: %s: want %s, got %s", fin.Step, c.Name, c.Want, c.Got)
	}
	if fin.Status == steps.Failed && fin.Error != "" {
		t.Errorf("step %s: %s", fin.Step, fin.Error)
	}
}
