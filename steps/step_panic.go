//go:build anonlab_panic

package steps

import "context"

// panicStep panics. Only a test build has it (go build -tags
// anonlab_panic): it proves that a panic in a step fails that step, and
// cleanup and the safety net still run.
//
//	panic: "the message"
type panicStep string

func (*panicStep) Validate(*Validator) error { return nil }

func (p *panicStep) Run(context.Context, *StepContext) error { panic(string(*p)) }

func init() { registry["panic"] = func() Action { return new(panicStep) } }
