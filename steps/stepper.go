package steps

import (
	"context"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Stepper runs a scenario on its own goroutine, one step at a time as it is
// told: the TUI's Enter, a, r and q, and the e2e suite's assessments. Its
// events arrive on Events, in order; the channel is closed after the
// Summary.
type Stepper struct {
	events chan Event
	cmds   chan stepCmd
	att    chan int // hands-on: Recheck, Solve
	done   chan struct{}
	sum    Summary
}

type stepCmd struct {
	op    int // opNext, opAll, opRerun, opStop
	index int
}

const (
	opNext = iota
	opAll
	opRerun
	opStop
)

// Start begins running sc on b. Nothing beyond the scenario's start is done
// until Next, All or Rerun is called. opts are Run's options (a Gate given
// there is replaced by the Stepper's).
func Start(ctx context.Context, sc *Scenario, b cluster.Backend, opts ...Option) *Stepper {
	s := &Stepper{events: make(chan Event, 256), cmds: make(chan stepCmd, 16), att: make(chan int, 4), done: make(chan struct{})}
	all := false
	gate := func(ctx context.Context, next int) (int, error) {
		if all {
			return next, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case c := <-s.cmds:
			switch c.op {
			case opAll:
				all = true
				return next, nil
			case opRerun:
				return c.index, nil
			case opStop:
				return 0, ErrStopped
			}
			return next, nil
		}
	}
	go func() {
		defer close(s.done)
		defer close(s.events)
		s.sum = Run(ctx, sc, b, SinkFunc(func(e Event) { s.events <- e }), append(opts, WithGate(gate), func(o *options) { o.attendee = s.att })...)
	}()
	return s
}

// Events delivers the run's events; it must be drained until closed.
func (s *Stepper) Events() <-chan Event { return s.events }

// Next lets the next step run.
func (s *Stepper) Next() { s.send(stepCmd{op: opNext}) }

// All lets every remaining step run.
func (s *Stepper) All() { s.send(stepCmd{op: opAll}) }

// Rerun runs the failed step at index again.
func (s *Stepper) Rerun(index int) { s.send(stepCmd{op: opRerun, index: index}) }

// Stop skips the remaining steps; cleanup runs.
func (s *Stepper) Stop() { s.send(stepCmd{op: opStop}) }

// Recheck verifies the step the attendee is doing now (hands-on mode).
func (s *Stepper) Recheck() { s.attend(Recheck) }

// Solve lets the lab do the step the attendee is doing (hands-on mode).
func (s *Stepper) Solve() { s.attend(Solve) }

// RestoreManifest puts kube-apiserver's original manifest back while the
// attendee does a step (hands-on mode).
func (s *Stepper) RestoreManifest() { s.attend(RestoreManifest) }

func (s *Stepper) attend(c int) {
	select {
	case s.att <- c:
	case <-s.done:
	default: // the same command is already queued
	}
}

// Done is closed when the run, cleanup included, has ended.
func (s *Stepper) Done() <-chan struct{} { return s.done }

// Summary is the run's outcome; valid once Done is closed.
func (s *Stepper) Summary() Summary { <-s.done; return s.sum }

func (s *Stepper) send(c stepCmd) {
	select {
	case s.cmds <- c:
	case <-s.done:
	}
}
