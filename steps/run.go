package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/anonlab/anonlab/steps/audit"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
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
	// handsOn: the attendee does the steps (handson.go).
	handsOn     bool
	attendee    <-chan int
	stepTimeout time.Duration
}

// Option configures Run.
type Option func(*options)

// WithLang chooses the language of titles and explanations (default en).
func WithLang(lang string) Option { return func(o *options) { o.lang = lang } }

// WithKeepCluster makes "cluster: destroy" steps a no-op: the cluster is
// left running (--keep, or an e2e suite that owns the cluster).
func WithKeepCluster(keep bool) Option { return func(o *options) { o.keep = keep } }

// WithAllowOpen lets steps that open the cluster to anonymous users run on a
// cluster the lab did not create (see docs/architecture.md, Safety).
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
	o := options{lang: "en", cleanupIn: 5 * time.Minute, stepTimeout: 15 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	r := &runner{opts: o, scenario: sc, backend: b, sink: sink, tokens: map[string]token{}, skippedTokens: map[string]string{}, results: map[stepKey]string{}}
	return r.run(ctx)
}

type token struct {
	value    string
	identity string
	variable string // the shell variable it is shown as
	// step gets a token of the same identity again (hands-on mode: the
	// attendee holds theirs, and the lab needs one to read a body).
	step *tokenStep
}

type runner struct {
	opts     options
	scenario *Scenario
	backend  cluster.Backend
	sink     Sink

	tokens map[string]token
	// skippedTokens names, by token, the step that was to get it and was
	// skipped.
	skippedTokens map[string]string
	// memEntry records what the run applied when the backend keeps no
	// ledger entry.
	memEntry  *ledger.Entry
	resources *resources // the cluster's REST resources, read once
	// audit follows kube-apiserver's audit log, where the backend has one.
	audit        *audit.Tail
	stopAudit    context.CancelFunc
	requests     int // requests sent, to tell their audit records apart
	clusterUp    bool
	flagsChanged bool
	// changeSkipped is the first main step that would have changed the
	// cluster and was skipped: the steps after it expect a state the
	// cluster is not in.
	changeSkipped string
	// opened is what anonymous users may do since the run's applies that
	// they could not before (SubjectAccessReviews).
	opened []accessAttr
	// handsOnBefore is what anonymous users could do before the attendee's
	// apply.
	handsOnBefore []accessResult
	// manifestsDir is $MANIFESTS when the run made it (removed at its end).
	manifestsDir   string
	results        map[stepKey]string // the last outcome of each step
	safetyFailures int
	clients        clientCache // the request steps' HTTP clients
}

// changer is implemented by step kinds that change the cluster's state
// (what the steps after them observe).
type changer interface{ changesCluster() bool }

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
		// A step for other versions leaves the cluster as the scenario
		// expects on this one: the steps after it still run.
		if status == Skipped && r.changeSkipped == "" && steps[i].Excluded(r.backend.Info().KubernetesVersion) == "" {
			if c, ok := steps[i].Action.(changer); ok && c.changesCluster() {
				r.changeSkipped = steps[i].ID
			}
		}
		if t, ok := steps[i].Action.(*tokenStep); ok && status == Skipped {
			r.skippedTokens[t.SaveAs] = steps[i].ID
		}
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
	// Interrupted on a cluster that is deleted next, only the deletion is
	// worth waiting for: all the run changed goes with the cluster.
	hurry := ctx.Err() != nil && r.destroysCluster() && r.backend.Info().Disposable
	for i, st := range r.scenario.Cleanup {
		switch {
		case !r.clusterUp && st.Kind != "cluster":
			r.skip(i, st, true, "the cluster is not running")
			continue
		case hurry && st.Kind != "cluster":
			r.skip(i, st, true, "interrupted: the cluster is deleted next, and all the run changed in it with it")
			continue
		}
		_, _ = r.step(cctx, i, st, true)
	}
	r.safetyNet(cctx)
	r.unfollowAudit()
	if r.manifestsDir != "" {
		_ = os.RemoveAll(r.manifestsDir)
	}
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
	info := StepInfo{ID: st.ID, Kind: st.Kind, Title: st.Title.In(r.opts.lang), Explain: strings.TrimSpace(st.Explain.In(r.opts.lang)), Cleanup: cleanup}
	for _, h := range st.Hints {
		info.Hints = append(info.Hints, strings.TrimSpace(h.In(r.opts.lang)))
	}
	return info
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
	var err error
	if why := st.Excluded(r.backend.Info().KubernetesVersion); why != "" {
		err = Skip(why)
	} else if r.changeSkipped != "" && !cleanup {
		err = Skip(fmt.Sprintf("step %q was skipped, and this step expects the state it makes", r.changeSkipped))
	} else if h, ok := r.attendeeDoes(st, cleanup); ok {
		err = r.handsOn(ctx, sc, h)
	} else {
		err = r.action(ctx, sc)
	}
	if e := sc.expect(); err == nil && e != nil {
		if _, ok := st.Action.(responder); ok {
			if sc.response == nil {
				err = errors.New("no response to match the expectations against")
			} else {
				for _, c := range e.Match(sc.response) {
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

// followAudit starts reading kube-apiserver's audit log, where the backend
// has one; the request steps then say why each answer was what it was.
func (r *runner) followAudit(ctx context.Context, sc *StepContext) {
	al, ok := r.backend.(cluster.AuditLogReader)
	if !ok || al.AuditLogPath() == "" || r.audit != nil {
		return
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t, err := audit.Follow(actx, al.AuditLogPath())
	if err != nil {
		cancel()
		sc.Log("cannot read kube-apiserver's audit log: %v", err)
		return
	}
	r.audit, r.stopAudit = t, cancel
}

func (r *runner) unfollowAudit() {
	if r.stopAudit != nil {
		r.stopAudit()
		<-r.audit.Done()
	}
	r.audit, r.stopAudit = nil, nil
}

// action runs the step's action; a panic in it fails the step (with the
// stack in the log) instead of skipping cleanup.
func (r *runner) action(ctx context.Context, sc *StepContext) (err error) {
	defer func() {
		if p := recover(); p != nil {
			sc.Log("panic in step %q: %v\n%s", sc.Step.ID, p, debug.Stack())
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return sc.Step.Action.Run(ctx, sc)
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

// safetyNet revokes what the run applied and did not delete, and puts
// kube-apiserver's flags back, when its cleanup steps did not.
func (r *runner) safetyNet(ctx context.Context) {
	if !r.clusterUp {
		return
	}
	r.revoke(ctx)
	r.checkClosed(ctx)
	if r.flagsChanged {
		if rc, ok := r.backend.(cluster.APIServerReconfigurer); ok {
			sc := r.safetyContext()
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

// revoke deletes what the run's ledger entry still records.
func (r *runner) revoke(ctx context.Context) {
	objs := r.recordedObjects()
	if len(objs) == 0 {
		return
	}
	sc := r.safetyContext()
	sc.Log("safety: revoking what the run applied and did not delete")
	if err := sc.deleteOwned(ctx, objs); err != nil {
		sc.Log("safety: could not revoke: %v", err)
		r.safetyFailures++
	}
}

func (r *runner) safetyContext() *StepContext {
	return &StepContext{Step: &Step{ID: "safety"}, Backend: r.backend, run: r}
}
