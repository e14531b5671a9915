package steps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anonlab/anonlab/steps/cluster"
)

// StepContext is what a running step sees: the backend, the run's state,
// and the ways to report.
type StepContext struct {
	Step    *Step
	Backend cluster.Backend
	run     *runner
	cleanup bool

	response     *Response
	failedChecks int
}

// Response is the HTTP response a step's expectations are matched against.
type Response struct {
	Status  int
	Reason  string
	Message string
	Body    []byte
}

// errSkip makes a step end as skipped rather than failed.
var errSkip = errors.New("skipped")

// Skip ends the step as skipped, saying why.
func Skip(why string) error { return fmt.Errorf("%w: %s", errSkip, why) }

// expect is the step's expectation for the cluster's Kubernetes version.
func (sc *StepContext) expect() *Expect {
	return sc.Step.ExpectFor(sc.Backend.Info().KubernetesVersion)
}

// Lang is the language of the run.
func (sc *StepContext) Lang() string { return sc.run.opts.lang }

// Log narrates.
func (sc *StepContext) Log(format string, args ...any) {
	sc.run.emit(Log{Step: sc.Step.ID, Text: fmt.Sprintf(format, args...)})
}

// Command shows the command a person would type.
func (sc *StepContext) Command(text string) {
	sc.run.emit(Command{Step: sc.Step.ID, Text: text})
}

// Check reports one expectation's outcome.
func (sc *StepContext) Check(c CheckResult) {
	if !c.OK {
		sc.failedChecks++
	}
	sc.run.emit(Check{Step: sc.Step.ID, Name: c.Name, Want: c.Want, Got: c.Got, OK: c.OK})
}

// progress reports backend progress as events.
func (sc *StepContext) progress(p cluster.Progress) {
	sc.run.emit(Progress{Step: sc.Step.ID, Phase: p.Phase, Detail: p.Detail, ElapsedMS: ms(p.Elapsed), Done: p.Done,
		Count: p.Count, Total: p.Total, LeftMS: ms(p.Left)})
}

// clusterState reports what the control plane looks like now.
func (sc *StepContext) clusterState(ctxArgs []string, running bool) {
	info := sc.Backend.Info()
	st := ClusterState{Step: sc.Step.ID, Backend: sc.Backend.Name(), Running: running}
	if running {
		st.KubernetesVersion, st.URL = info.KubernetesVersion, info.URL
		if ctxArgs != nil {
			st.AnonymousAuth = cluster.AnonymousAuth(ctxArgs)
		}
	}
	sc.run.emit(st)
}

// mayWrite says whether a step may write to the cluster: always on a
// cluster the lab created (a recorded fact, cluster.Info.CreatedByLab),
// elsewhere only with the user's opt-in. Otherwise the step is skipped,
// saying why; opens, when given, says how the step would also open the
// cluster to anonymous users.
func (sc *StepContext) mayWrite(what string, opens []string) error {
	info := sc.Backend.Info()
	if info.CreatedByLab || sc.run.opts.allowOpen {
		if len(opens) > 0 {
			sc.Log("this opens the cluster to anonymous users (the lab revokes it in cleanup): %s", strings.Join(opens, "; "))
		}
		return nil
	}
	why := fmt.Sprintf("read-only: the lab did not create this cluster (%s backend, %s), so it does not %s", sc.Backend.Name(), info.URL, what)
	if len(opens) > 0 {
		why += "; it would also open the cluster to anonymous users: " + strings.Join(opens, "; ")
	}
	return Skip(why + ". Pass --i-understand-this-opens-the-cluster to allow it (everything applied is recorded and revoked in cleanup)")
}
