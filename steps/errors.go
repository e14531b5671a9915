package steps

import (
	"errors"
	"fmt"
)

// ErrInvalidScenario is matched (errors.Is) by every error about a
// scenario's content: the CLI exits 2 on it, before anything starts.
var ErrInvalidScenario = errors.New("invalid scenario")

// ScenarioError is a problem at a place in a scenario file.
type ScenarioError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ScenarioError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidScenario) true.
func (e *ScenarioError) Is(target error) bool { return target == ErrInvalidScenario }
