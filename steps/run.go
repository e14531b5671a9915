package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Gate decides when the next step runs: it blocks until the step at next
// may run and returns the index of the step to run (next, or an earlier
// failed step to run again). An error stops the run; cleanup still runs.
type Gate func(ctx context.Context, next int) (int, error)

type options struct {
	lang      string
	keep      bool
	allowOpen bool
	gate      Gate
	cleanupIn time.Duration
}

// Option configures Run.
type Option func(*options)

// WithLang chooses the language of titles and explanations (default en).
func WithLang(lang string) Option { return func(o *options) { o.lang = lang } }

// WithKeepCluster makes "cluster: destroy" steps a no-op: the cluster is
// left running (--keep, or an e2e suite that owns the cluster).
func WithKeepCluster(keep bool) Option { return func(o *options) { o.keep = keep } }

// WithAllowOpen lets steps that open the cluster to anonymous users run on a
// cluster the lab did not create (see DESIGN.md, Safety).
func WithAllowOpen(allow bool) Option { return func(o *options) { o.allowOpen = allow } }

// WithGate makes the run wait for gate before each step (the TUI's Enter).
func WithGate(g Gate) Option { return func(o *options) { o.gate = g } }

// ErrStopped is returned by a Gate to stop the run (the TUI's q).
var ErrStopped = errors.New("stopped before this step")

// Run runs the scenario's steps in order on b, then its cleanup steps
// whatever happened, then puts back anything the scenario opened and did
// not close. Every event goes to sink, from the calling goroutine. When ctx
// is cancelled (Ctrl-C) the current step is interrupted, the remaining steps
// are skipped, and cleanup runs on a context of its own.
func Run(ctx context.Context, sc *Scenario, b cluster.Backend, sink Sink, opts ...Option) Summary {
	o := options{lang: "en", cleanupIn: 5 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	r := &runner{opts: o, scenario: sc, backend: b, sink: sink, tokens: map[string]token{}, results: map[stepKey]string{}, applied: map[objectKey]appliedObject{}}
	return r.run(ctx)
}

type token struct {
	value    string
	identity string
	variable string // the shell variable it is shown as
}

type runner struct {
	opts     options
	scenario *Scenario
	backend  cluster.Backend
	sink     Sink

	tokens         map[string]token
	applied        map[objectKey]appliedObject
	clusterUp      bool
	flagsChanged   bool
	results        map[stepKey]string // the last outcome of each step
	safetyFailures int
	clients        clientCache // the request steps' HTTP clients
}

type stepKey struct {
	cleanup bool
	index   int
}

func (r *runner) emit(e Event) { r.sink.Emit(r.redact(e)) }

func (r *runner) run(ctx context.Context) Summary {
	start := time.Now()
	defer r.clients.close()
	started := ScenarioStarted{
		Scenario: r.scenario.Name, Title: r.scenario.Title.In(r.opts.lang),
		Description: r.scenario.Description.In(r.opts.lang), Backend: r.backend.Name(), Lang: r.opts.lang,
	}
	for _, st := range r.scenario.Steps {
		started.Steps = append(started.Steps, r.info(st, false))
	}
	for _, st := range r.scenario.Cleanup {
		started.Steps = append(started.Steps, r.info(st, true))
	}
	r.emit(started)

	steps := r.scenario.Steps
	failed := map[int]bool{} // by index, for the steps that ran
	next, stopReason := 0, ""
	for next < len(steps) {
		i := next
		if r.opts.gate != nil {
			var err error
			if i, err = r.opts.gate(ctx, next); err != nil {
				stopReason = err.Error()
				break
			}
			if i < 0 || i > next || i < next && !failed[i] {
				i = next
			}
		}
		if ctx.Err() != nil {
			stopReason = "interrupted"
			break
		}
		status, err := r.step(ctx, i, steps[i], false)
		failed[i] = status == Failed
		if i < next {
			continue // a re-run leaves the position where it was
		}
		next++
		if err != nil {
			stopReason = fmt.Sprintf("step %q could not run", steps[i].ID)
			if ctx.Err() != nil {
				stopReason = "interrupted"
			}
			break
		}
	}
	for i := next; i < len(steps); i++ {
		r.skip(i, steps[i], false, stopReason)
	}

	// Cleanup runs to its end even after Ctrl-C; a second signal is the
	// CLI's business (it forces the exit).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.cleanupIn)
	defer cancel()
	for i, st := range r.scenario.Cleanup {
		if !r.clusterUp && st.Kind != "cluster" {
			r.skip(i, st, true, "the cluster is not running")
			continue
		}
		_, _ = r.step(cctx, i, st, true)
	}
	r.safetyNet(cctx)
	sum := Summary{Failed: r.safetyFailures, DurationMS: ms(time.Since(start))}
	for _, status := range r.results {
		switch status {
		case Passed:
			sum.Passed++
		case Failed:
			sum.Failed++
		default:
			sum.Skipped++
		}
	}
	r.emit(sum)
	return sum
}

func (r *runner) info(st *Step, cleanup bool) StepInfo {
	return StepInfo{ID: st.ID, Kind: st.Kind, Title: st.Title.In(r.opts.lang), Explain: strings.TrimSpace(st.Explain.In(r.opts.lang)), Cleanup: cleanup}
}

func (r *runner) skip(i int, st *Step, cleanup bool, why string) {
	r.results[stepKey{cleanup, i}] = Skipped
	r.emit(StepFinished{Step: st.ID, Index: i, Cleanup: cleanup, Status: Skipped, Error: why})
}

// step runs one step: its action, then its expectations.
func (r *runner) step(ctx context.Context, i int, st *Step, cleanup bool) (string, error) {
	start := time.Now()
	r.emit(StepStarted{Step: st.ID, Index: i, Title: st.Title.In(r.opts.lang), Cleanup: cleanup})
	sc := &StepContext{Step: st, Backend: r.backend, run: r, cleanup: cleanup}
	err := st.Action.Run(ctx, sc)
	if err == nil && st.Expect != nil {
		if _, ok := st.Action.(responder); ok {
			if sc.response == nil {
				err = errors.New("no response to match the expectations against")
			} else {
				for _, c := range st.Expect.Match(sc.response) {
					sc.Check(c)
				}
			}
		}
	}
	fin := StepFinished{Step: st.ID, Index: i, Cleanup: cleanup, Status: Passed, DurationMS: ms(time.Since(start))}
	switch {
	case errors.Is(err, errSkip):
		fin.Status, fin.Error = Skipped, strings.TrimPrefix(err.Error(), errSkip.Error()+": ")
		err = nil
	case err != nil:
		fin.Status, fin.Error = Failed, err.Error()
		if ctx.Err() != nil {
			fin.Error = "interrupted: " + fin.Error
		}
	case sc.failedChecks > 0:
		fin.Status = Failed
	}
	r.results[stepKey{cleanup, i}] = fin.Status
	r.emit(fin)
	return fin.Status, err
}

// destroysCluster reports whether the scenario's cleanup deletes the
// cluster: then restoring what is about to be deleted is wasted time.
func (r *runner) destroysCluster() bool {
	if r.opts.keep {
		return false
	}
	for _, st := range r.scenario.Cleanup {
		if c, ok := st.Action.(*clusterStep); ok && *c == "destroy" {
			return true
		}
	}
	return false
}

// safetyNet revokes what the scenario applied and did not delete, and puts
// kube-apiserver's flags back, when its cleanup steps did not.
func (r *runner) safetyNet(ctx context.Context) {
	if !r.clusterUp {
		return
	}
	sc := &StepContext{Step: &Step{ID: "safety"}, Backend: r.backend, run: r}
	if len(r.applied) > 0 {
		if err := sc.deleteObjects(ctx, r.applied); err != nil {
			sc.Log("safety: could not revoke %s: %v", describeObjects(r.applied), err)
			r.safetyFailures++
		}
	}
	if r.flagsChanged {
		if rc, ok := r.backend.(cluster.APIServerReconfigurer); ok {
			sc.Log("safety: restoring kube-apiserver's original flags")
			if err := rc.RestoreAPIServer(ctx); err != nil {
				sc.Log("safety: could not restore kube-apiserver's flags: %v", err)
				r.safetyFailures++
			} else {
				r.flagsChanged = false
			}
		}
	}
}

// redact replaces every token value in the event's text by its variable.
func (r *runner) redact(e Event) Event {
	if len(r.tokens) == 0 {
		return e
	}
	clean := func(s string) string {
		for _, t := range r.tokens {
			s = strings.ReplaceAll(s, t.value, "$"+t.variable)
		}
		return s
	}
	switch ev := e.(type) {
	case HTTPExchange:
		ev.Body, ev.Command, ev.Message = clean(ev.Body), clean(ev.Command), clean(ev.Message)
		return ev
	case Check:
		ev.Want, ev.Got = clean(ev.Want), clean(ev.Got)
		return ev
	case Log:
		ev.Text = clean(ev.Text)
		return ev
	case Command:
		ev.Text = clean(ev.Text)
		return ev
	case StepFinished:
		ev.Error = clean(ev.Error)
		return ev
	}
	return e
}
