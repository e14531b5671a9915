package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/anonlab/anonlab/steps"
)

// JUnit collects a run and writes it as JUnit XML when the run ends: one
// testsuite per scenario, one testcase per step (cleanup steps too), a
// failure with want and got for each failed step.
type JUnit struct {
	w       io.Writer
	suite   junitSuite
	current map[string]*junitCase
	order   []*junitCase
}

// NewJUnit returns a JUnit sink writing to w.
func NewJUnit(w io.Writer) *JUnit { return &JUnit{w: w, current: map[string]*junitCase{}} }

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Props    []junitProp  `xml:"properties>property,omitempty"`
	Cases    []*junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// Emit implements steps.Sink.
func (j *JUnit) Emit(e steps.Event) {
	switch ev := e.(type) {
	case steps.ScenarioStarted:
		j.suite.Name = ev.Scenario
		j.suite.Props = append(j.suite.Props, junitProp{"backend", ev.Backend}, junitProp{"title", ev.Title})
		for _, s := range ev.Steps {
			c := &junitCase{Name: s.ID + " " + s.Title, Classname: ev.Scenario}
			if s.Cleanup {
				c.Classname += ".cleanup"
			}
			j.current[key(s.ID, s.Cleanup)] = c
			j.order = append(j.order, c)
		}
	case steps.ClusterState:
		if ev.KubernetesVersion != "" {
			j.suite.Props = append(j.suite.Props, junitProp{"kubernetesVersion", ev.KubernetesVersion})
		}
	case steps.HTTPExchange:
		if c := j.caseOf(ev.Step); c != nil {
			c.SystemOut += fmt.Sprintf("$ %s\n%d %s\n", ev.Command, ev.Status, ev.StatusText)
		}
	case steps.Check:
		c := j.caseOf(ev.Step)
		switch {
		case c == nil:
		case ev.OK:
			// What held is worth reading too (a verdict, a CIS control).
			c.SystemOut += fmt.Sprintf("✓ %s: %s\n", ev.Name, ev.Got)
		default:
			j.fail(c, ev.Name+" does not hold", fmt.Sprintf("%s\n  want: %s\n  got:  %s\n", ev.Name, ev.Want, ev.Got))
		}
	case steps.StepFinished:
		c := j.current[key(ev.Step, ev.Cleanup)]
		if c == nil {
			return
		}
		c.Time = fmt.Sprintf("%.3f", float64(ev.DurationMS)/1000)
		switch ev.Status {
		case steps.Failed:
			if ev.Error != "" {
				j.fail(c, ev.Error, ev.Error+"\n")
			}
		case steps.Skipped:
			c.Skipped = &junitSkipped{Message: ev.Error}
		}
	case steps.Summary:
		j.suite.Cases = j.order
		j.suite.Tests = len(j.order)
		for _, c := range j.order {
			if c.Failure != nil {
				j.suite.Failures++
			}
			if c.Skipped != nil {
				j.suite.Skipped++
			}
		}
		j.suite.Time = fmt.Sprintf("%.3f", float64(ev.DurationMS)/1000)
		out, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{j.suite}}, "", "  ")
		if err != nil {
			return
		}
		_, _ = io.WriteString(j.w, xml.Header+string(out)+"\n")
	}
}

// caseOf finds the running step's case; a cleanup step shares no id with a
// main step in a valid scenario.
func (j *JUnit) caseOf(step string) *junitCase {
	if c := j.current[step]; c != nil {
		return c
	}
	return j.current[key(step, true)]
}

func (j *JUnit) fail(c *junitCase, msg, text string) {
	if c.Failure == nil {
		c.Failure = &junitFailure{Message: firstLine(msg)}
	}
	c.Failure.Text += text
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
