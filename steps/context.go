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
	sc.run.emit(Progress{Step: sc.Step.ID, Phase: p.Phase, Detail: p.Detail, ElapsedMS: ms(p.Elapsed), Done: p.Done})
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

// mayOpen says whether a step that opens the cluster to anonymous users may
// run, and why not.
func (sc *StepContext) mayOpen(what string) error {
	if sc.Backend.Info().CreatedByLab || sc.run.opts.allowOpen {
		return nil
	}
	return fmt.Errorf("refusing to %s: this cluster (%s backend, %s) was not created by the lab, and the step would open it to anonymous users; run it on a lab cluster (--backend local or kind), or pass --i-understand-this-opens-the-cluster to allow it (the lab still undoes it in cleanup)",
		what, sc.Backend.Name(), sc.Backend.Info().URL)
}

// kubectl is the kubectl command line prefix for the cluster's admin.
func (sc *StepContext) kubectl() string {
	if kc := sc.Backend.Info().Kubeconfig; kc != "" {
		return "kubectl --kubeconfig " + shellQuote(kc)
	}
	return "kubectl"
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
