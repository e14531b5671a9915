// Package tui is anonlab's terminal UI: a scenario picker and a step by
// step walkthrough. It renders the engine's events and tells the engine
// when to go on; it runs no step itself.
package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
)

// Controller is what the walkthrough needs from the engine: its events
// and the keys' orders. *Engine is the real one; tests use a fake.
type Controller interface {
	// Events delivers the run's events in order; closed after the Summary.
	Events() <-chan steps.Event
	// Next runs the next step.
	Next()
	// All runs every remaining step.
	All()
	// Rerun runs the failed step at index again.
	Rerun(index int)
	// Stop skips the remaining steps while none runs; cleanup follows.
	Stop()
	// Interrupt cancels the step that runs; cleanup follows.
	Interrupt()
	// Recheck verifies the step the attendee does now (hands-on mode).
	Recheck()
	// Solve lets the lab do the step the attendee does now (hands-on mode).
	Solve()
	// RestoreManifest puts kube-apiserver's original manifest back (hands-on
	// mode, when an edit keeps it from starting).
	RestoreManifest()
}

// Engine is a steps.Stepper whose context the TUI may cancel, so that q in
// the middle of a step interrupts it.
type Engine struct {
	*steps.Stepper
	cancel context.CancelFunc
}

var _ Controller = (*Engine)(nil)

// Start starts the engine on sc and b; nothing beyond the scenario's start
// happens until Next or All.
func Start(ctx context.Context, sc *steps.Scenario, b cluster.Backend, opts ...steps.Option) *Engine {
	ctx, cancel := context.WithCancel(ctx)
	return &Engine{Stepper: steps.Start(ctx, sc, b, opts...), cancel: cancel}
}

// Interrupt implements Controller.
func (e *Engine) Interrupt() { e.cancel() }

// Close makes sure the run has ended, its cleanup included, and returns
// its outcome. When the program ended before the run did (it was killed),
// the run is interrupted and its remaining events are drained.
func (e *Engine) Close() steps.Summary {
	select {
	case <-e.Done():
	default:
		e.cancel()
		for range e.Events() {
		}
	}
	e.cancel()
	return e.Summary()
}

// eventsClosed says the engine has sent its last event.
type eventsClosed struct{}

// waitForEvent turns the next event into a message; Update re-arms it after
// each one, so events arrive one at a time and in order.
func waitForEvent(ch <-chan steps.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosed{}
		}
		return ev
	}
}
