package steps

import (
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Event is something the engine reports while it runs a scenario. Each
// event is a plain struct; consumers type-switch on them.
type Event interface {
	// EventName is the event's name in JSON lines ("http", "check", ...).
	EventName() string
}

// Sink receives the engine's events, in order, from one goroutine.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit implements Sink.
func (f SinkFunc) Emit(e Event) { f(e) }

// StepInfo describes a step before it runs.
type StepInfo struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	Explain string `json:"explain,omitempty"`
	// Hints are the step's hints for hands-on mode, in the run's language.
	Hints   []string `json:"hints,omitempty"`
	Cleanup bool     `json:"cleanup,omitempty"`
}

// ScenarioStarted opens a run.
type ScenarioStarted struct {
	Scenario    string     `json:"scenario"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	Backend     string     `json:"backend"`
	Lang        string     `json:"lang"`
	Steps       []StepInfo `json:"steps"`
}

// ClusterState tells what the control plane looks like now: after it was
// created and after each change to kube-apiserver.
type ClusterState struct {
	Step              string `json:"step"`
	Backend           string `json:"backend"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	URL               string `json:"url,omitempty"`
	// AnonymousAuth is "on", "off", "health paths only" (an
	// AuthenticationConfiguration restricts it), or "" when unknown.
	AnonymousAuth string `json:"anonymousAuth,omitempty"`
	Running       bool   `json:"running"`
}

// StepStarted marks the start of a step.
type StepStarted struct {
	Step    string `json:"step"`
	Index   int    `json:"index"`
	Title   string `json:"title"`
	Cleanup bool   `json:"cleanup,omitempty"`
}

// Command is the command a person would type to do what the step does.
type Command struct {
	Step string `json:"step"`
	Text string `json:"command"`
}

// HTTPExchange is one request to the apiserver and its response.
type HTTPExchange struct {
	Step string `json:"step"`
	// Identity is "anonymous", or who the credentials belong to.
	Identity string `json:"identity"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	URL      string `json:"url"`
	// Command is the same request as a person would type it (curl with
	// --cacert, kubectl), with any token as a shell variable.
	Command    string `json:"command"`
	Status     int    `json:"status"`
	StatusText string `json:"statusText"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	// Body is the response body, pretty-printed when it is JSON.
	Body       string `json:"body,omitempty"`
	DurationMS int64  `json:"durationMs"`
	// Audit is what kube-apiserver's audit log says of the request, where
	// the backend has one the lab reads.
	Audit *AuditRecord `json:"audit,omitempty"`
}

// AuditRecord is why a request got its answer, as kube-apiserver's audit
// log tells it: who authentication said it was (User empty: it failed),
// and authorization's decision and reason.
type AuditRecord struct {
	User     string   `json:"user"`
	Groups   []string `json:"groups,omitempty"`
	Decision string   `json:"decision"`
	Reason   string   `json:"reason"`
	// Why says the same in a sentence, in the run's language.
	Why string `json:"why"`
}

// Check is one expectation's outcome.
type Check struct {
	Step string `json:"step"`
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// Log is a line of narration.
type Log struct {
	Step string `json:"step,omitempty"`
	Text string `json:"text"`
}

// Progress reports long work (a binary build, a cluster creation, a wait
// for the apiserver).
type Progress struct {
	Step      string `json:"step"`
	Phase     string `json:"phase"`
	Detail    string `json:"detail"`
	ElapsedMS int64  `json:"elapsedMs"`
	Done      bool   `json:"done,omitempty"`
	// Count of Total packages compiled, and the estimated time left, for
	// a source build of the binaries (cluster.Progress).
	Count  int   `json:"count,omitempty"`
	Total  int   `json:"total,omitempty"`
	LeftMS int64 `json:"leftMs,omitempty"`
}

// Backend returns p as the backend reported it.
func (p Progress) Backend() cluster.Progress {
	return cluster.Progress{Phase: p.Phase, Detail: p.Detail, Elapsed: time.Duration(p.ElapsedMS) * time.Millisecond, Done: p.Done,
		Count: p.Count, Total: p.Total, Left: time.Duration(p.LeftMS) * time.Millisecond}
}

// Step outcomes.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
)

// StepFinished closes a step.
type StepFinished struct {
	Step    string `json:"step"`
	Index   int    `json:"index"`
	Cleanup bool   `json:"cleanup,omitempty"`
	// Status is passed, failed or skipped ("result" in JSON: an http
	// event's "status" is a number).
	Status string `json:"result"`
	// Error is why the step failed or was skipped, when it is not a check.
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// Summary closes a run.
type Summary struct {
	Passed     int   `json:"passed"`
	Failed     int   `json:"failed"`
	Skipped    int   `json:"skipped"`
	DurationMS int64 `json:"durationMs"`
}

// OK reports whether every step that ran held.
func (s Summary) OK() bool { return s.Failed == 0 }

func (ScenarioStarted) EventName() string { return "scenario" }
func (ClusterState) EventName() string    { return "cluster" }
func (StepStarted) EventName() string     { return "step" }
func (Command) EventName() string         { return "command" }
func (HTTPExchange) EventName() string    { return "http" }
func (Check) EventName() string           { return "check" }
func (Log) EventName() string             { return "log" }
func (Progress) EventName() string        { return "progress" }
func (StepFinished) EventName() string    { return "finished" }
func (Summary) EventName() string         { return "summary" }

func ms(d time.Duration) int64 { return d.Milliseconds() }
