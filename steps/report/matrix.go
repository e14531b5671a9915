package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/anonlab/anonlab/steps"
)

// Observation is what one step showed in one run: its result and, for a
// request, the status the apiserver answered.
type Observation struct {
	Step    string
	Title   string
	Cleanup bool
	Result  string
	Status  int
	// Why is why the step was skipped or could not run.
	Why string
}

// Observer is a sink that keeps each step's observation, in order, and the
// version the apiserver reported.
type Observer struct {
	Steps []*Observation
	// KubernetesVersion is the GitVersion the running kube-apiserver
	// answered on /version, "" until a ClusterState event told it.
	KubernetesVersion string
	byKey             map[string]*Observation
}

// NewObserver returns an empty Observer.
func NewObserver() *Observer { return &Observer{byKey: map[string]*Observation{}} }

// Emit implements steps.Sink.
func (o *Observer) Emit(e steps.Event) {
	switch ev := e.(type) {
	case steps.ScenarioStarted:
		for _, s := range ev.Steps {
			obs := &Observation{Step: s.ID, Title: s.Title, Cleanup: s.Cleanup}
			o.Steps = append(o.Steps, obs)
			o.byKey[key(s.ID, s.Cleanup)] = obs
		}
	case steps.ClusterState:
		if ev.KubernetesVersion != "" {
			o.KubernetesVersion = ev.KubernetesVersion
		}
	case steps.HTTPExchange:
		if obs := o.byKey[ev.Step]; obs != nil {
			obs.Status = ev.Status
		}
	case steps.StepFinished:
		if obs := o.byKey[key(ev.Step, ev.Cleanup)]; obs != nil {
			obs.Result, obs.Why = ev.Status, ev.Error
		}
	}
}

// step is the observation of a step, nil when o or the step is unknown.
func (o *Observer) step(id string, cleanup bool) *Observation {
	if o == nil {
		return nil
	}
	return o.byKey[key(id, cleanup)]
}

// firstError is why the first step that failed could not run, or failed.
func (o *Observer) firstError() string {
	for _, s := range o.Steps {
		if s.Result == steps.Failed {
			if s.Why != "" {
				return fmt.Sprintf("step %q: %s", s.Step, s.Why)
			}
			return fmt.Sprintf("step %q failed", s.Step)
		}
	}
	return "no step ran"
}

// WriteMatrix writes a Markdown table: a row per step of the scenario, a
// column per requested Kubernetes version, each cell the observed status
// and whether the expectations held (✓, ✗, or – for skipped). A column's
// header is the version its kube-apiserver reported, with the requested
// one when they differ.
func WriteMatrix(w io.Writer, versions []string, runs map[string]*Observer) error {
	var b strings.Builder
	b.WriteString("| step |")
	for _, v := range versions {
		b.WriteString(" " + columnHeader(v, runs[v]) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(versions)) + "\n")
	var rows []*Observation
	for _, v := range versions {
		if r := runs[v]; r != nil && len(r.Steps) > len(rows) {
			rows = r.Steps
		}
	}
	for i, row := range rows {
		title := row.Title
		if row.Cleanup {
			title = "cleanup: " + title
		}
		fmt.Fprintf(&b, "| %s |", strings.ReplaceAll(title, "|", `\|`))
		for _, v := range versions {
			cell := "not run"
			if r := runs[v]; r != nil && i < len(r.Steps) {
				cell = matrixCell(r.Steps[i])
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func columnHeader(requested string, r *Observer) string {
	switch {
	case r == nil || r.KubernetesVersion == "":
		return requested + " (not observed)"
	case r.KubernetesVersion != requested:
		return requested + " (observed " + r.KubernetesVersion + ")"
	}
	return r.KubernetesVersion
}

func matrixCell(o *Observation) string {
	mark := map[string]string{steps.Passed: "✓", steps.Failed: "✗", steps.Skipped: "–"}[o.Result]
	if mark == "" {
		mark = "not run"
	}
	if o.Status != 0 {
		return strconv.Itoa(o.Status) + " " + mark
	}
	return mark
}
