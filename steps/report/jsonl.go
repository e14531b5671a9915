// Package report writes a run's events for people and programs: text that
// reads like the article, JSON lines, and JUnit XML.
package report

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/anonlab/anonlab/steps"
)

// JSONLines writes one JSON object per event, each with its name under
// "event" first.
type JSONLines struct{ w io.Writer }

// NewJSONLines returns a sink writing JSON lines to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Emit implements steps.Sink.
func (j *JSONLines) Emit(e steps.Event) {
	body, err := json.Marshal(e)
	if err != nil {
		return
	}
	var line bytes.Buffer
	line.WriteString(`{"event":"` + e.EventName() + `"`)
	if len(body) > 2 {
		line.WriteByte(',')
		line.Write(body[1:])
	} else {
		line.WriteByte('}')
	}
	line.WriteByte('\n')
	_, _ = j.w.Write(line.Bytes())
}
