package report

import "github.com/anonlab/anonlab/steps"

// Tee sends every event to each sink in turn.
type Tee []steps.Sink

// Emit implements steps.Sink.
func (t Tee) Emit(e steps.Event) {
	for _, s := range t {
		s.Emit(e)
	}
}
