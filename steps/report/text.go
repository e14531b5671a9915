package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/anonlab/anonlab/steps"
)

// Text writes a run the way the article reads: each step's title and
// explanation, the command a person would type, the answer, and each check.
// Progress and narration go to log, so that out stays the transcript.
type Text struct {
	out, log    io.Writer
	steps       map[string]steps.StepInfo
	started     map[string]bool
	total       int
	bodyLines   int
	lastPhase   string
	lastPrinted time.Time
	now         func() time.Time
}

// TextOption configures Text.
type TextOption func(*Text)

// WithBodyLines caps how many lines of a response body are shown (0: all).
func WithBodyLines(n int) TextOption { return func(t *Text) { t.bodyLines = n } }

// NewText returns a text sink.
func NewText(out, log io.Writer, opts ...TextOption) *Text {
	t := &Text{out: out, log: log, steps: map[string]steps.StepInfo{}, started: map[string]bool{}, bodyLines: 30, now: time.Now}
	for _, o := range opts {
		o(t)
	}
	return t
}

const indent = "    "

// Emit implements steps.Sink.
func (t *Text) Emit(e steps.Event) {
	switch ev := e.(type) {
	case steps.ScenarioStarted:
		for _, s := range ev.Steps {
			t.steps[key(s.ID, s.Cleanup)] = s
			if !s.Cleanup {
				t.total++
			}
		}
		fmt.Fprintf(t.out, "%s — %s\n", ev.Scenario, ev.Title)
		fmt.Fprintf(t.out, "backend: %s\n", ev.Backend)
		if ev.Description != "" {
			fmt.Fprintf(t.out, "\n%s\n", wrap(ev.Description, "", 78))
		}
	case steps.StepStarted:
		t.started[key(ev.Step, ev.Cleanup)] = true
		if ev.Cleanup {
			fmt.Fprintf(t.out, "\n[cleanup] %s\n", ev.Title)
		} else {
			fmt.Fprintf(t.out, "\n[%d/%d] %s\n", ev.Index+1, t.total, ev.Title)
		}
		if ex := t.steps[key(ev.Step, ev.Cleanup)].Explain; ex != "" {
			fmt.Fprintf(t.out, "%s\n", wrap(ex, indent, 78))
		}
	case steps.Command:
		fmt.Fprintf(t.out, "\n%s$ %s\n", indent, strings.ReplaceAll(ev.Text, "\n", "\n"+indent+"  "))
	case steps.HTTPExchange:
		fmt.Fprintf(t.out, "\n%s$ %s\n", indent, ev.Command)
		fmt.Fprintf(t.out, "%s%d %s  (%s, %d ms)\n", indent, ev.Status, ev.StatusText, ev.Identity, ev.DurationMS)
		if ev.Audit != nil {
			fmt.Fprintf(t.out, "%swhy: %s\n", indent, ev.Audit.Why)
		}
		if ev.Body != "" {
			fmt.Fprintln(t.out, indentBody(ev.Body, indent, t.bodyLines))
		}
	case steps.Waiting:
		fmt.Fprintf(t.out, "\n%syour turn — the command that does it (eval \"$(anonlab env)\" first):\n%s$ %s\n", indent, indent, strings.ReplaceAll(ev.Command, "\n", "\n"+indent+"  "))
	case steps.Observed:
		user := ev.User
		if user == "" {
			user = "(not authenticated)"
		}
		mark := "✓"
		if !ev.Matched {
			mark = "·"
		}
		fmt.Fprintf(t.out, "%s%s seen: %s %s by %s → %d (%s)\n", indent, mark, strings.ToUpper(ev.Verb), ev.Path, user, ev.Status, ev.UserAgent)
		fmt.Fprintf(t.out, "%swhy: %s\n", indent, ev.Explain)
		if ev.Why != "" {
			fmt.Fprintf(t.out, "%snot this step: %s\n", indent, ev.Why)
		}
	case steps.DoneByLab:
		fmt.Fprintf(t.out, "%sthe lab did this step for you\n", indent)
	case steps.Check:
		if ev.OK {
			fmt.Fprintf(t.out, "%s✓ %s: %s\n", indent, ev.Name, ev.Got)
		} else {
			fmt.Fprintf(t.out, "%s✗ %s\n%s    want: %s\n%s    got:  %s\n", indent, ev.Name, indent, ev.Want, indent, ev.Got)
		}
	case steps.Log:
		fmt.Fprintf(t.out, "%s%s\n", indent, ev.Text)
	case steps.ClusterState:
		if ev.Running && ev.AnonymousAuth != "" {
			fmt.Fprintf(t.out, "%sanonymous auth: %s\n", indent, ev.AnonymousAuth)
		}
	case steps.Progress:
		// Throttled: a build reports every package it compiles.
		now := t.now()
		if ev.Phase != t.lastPhase || ev.Done || now.Sub(t.lastPrinted) >= 5*time.Second {
			fmt.Fprintf(t.log, "%s… %s\n", indent, ev.Backend().Line())
			t.lastPhase, t.lastPrinted = ev.Phase, now
		}
	case steps.StepFinished:
		switch ev.Status {
		case steps.Passed:
			fmt.Fprintf(t.out, "%s→ passed (%s)\n", indent, dur(ev.DurationMS))
		case steps.Failed:
			msg := ""
			if ev.Error != "" {
				msg = ": " + ev.Error
			}
			fmt.Fprintf(t.out, "%s→ FAILED (%s)%s\n", indent, dur(ev.DurationMS), strings.ReplaceAll(msg, "\n", "\n"+indent+"  "))
		default:
			if t.started[key(ev.Step, ev.Cleanup)] {
				fmt.Fprintf(t.out, "%s→ skipped: %s\n", indent, ev.Error)
			} else {
				fmt.Fprintf(t.out, "\n[skipped] %s: %s\n", t.steps[key(ev.Step, ev.Cleanup)].Title, ev.Error)
			}
		}
	case steps.Summary:
		fmt.Fprintf(t.out, "\n%d passed, %d failed, %d skipped (%s)\n", ev.Passed, ev.Failed, ev.Skipped, dur(ev.DurationMS))
	}
}

func key(id string, cleanup bool) string {
	if cleanup {
		return "cleanup/" + id
	}
	return id
}

func dur(msec int64) string {
	return (time.Duration(msec) * time.Millisecond).Round(10 * time.Millisecond).String()
}

func indentBody(body, prefix string, max int) string {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	more := 0
	if max > 0 && len(lines) > max {
		more = len(lines) - max
		lines = lines[:max]
	}
	out := prefix + strings.Join(lines, "\n"+prefix)
	if more > 0 {
		out += fmt.Sprintf("\n%s… (%d more lines; --output json has the whole body)", prefix, more)
	}
	return out
}

// wrap folds prose at width, keeping paragraphs; lines of other languages
// without spaces are left as they are.
func wrap(s, prefix string, width int) string {
	var out []string
	for _, para := range strings.Split(strings.TrimSpace(s), "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			out = append(out, "")
			continue
		}
		line := prefix + words[0]
		for _, w := range words[1:] {
			if len(line)+1+len(w) > width {
				out = append(out, line)
				line = prefix + w
				continue
			}
			line += " " + w
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
