package steps

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Languages the lab speaks; English is always present.
var Languages = []string{"en", "ja"}

// Text is prose in several languages. In YAML it is either a plain string
// (English) or a mapping from language to text.
type Text map[string]string

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = Text{"en": n.Value}
		return nil
	}
	m := map[string]string{}
	if err := n.Decode(&m); err != nil {
		return err
	}
	*t = m
	return nil
}

// In returns the text in lang, falling back to English.
func (t Text) In(lang string) string {
	if s, ok := t[lang]; ok && s != "" {
		return s
	}
	return t["en"]
}

// Scenario is a lab: steps run in order, then cleanup steps, always.
type Scenario struct {
	Name        string
	Title       Text
	Description Text
	Steps       []*Step
	Cleanup     []*Step
	// File is where the scenario was read from ("scenarios/x.yaml" for an
	// embedded one).
	File string
	// dir is the directory of a scenario read from disk; its manifests may
	// sit beside it.
	dir string
}

// Step is one thing the lab does and what it expects to see.
type Step struct {
	ID      string
	Title   Text
	Explain Text
	// Hints help an attendee who is stuck on the step in hands-on mode,
	// one at a time, the last closest to the answer.
	Hints []Text
	// Kind is the step kind's name, the key that holds its parameters.
	Kind   string
	Action Action
	// Kubernetes is the versions the step runs on; on others it is skipped.
	Kubernetes Versions
	// Expect is what the step must show; Expects, when the scenario gives
	// a list, is one expectation per range of versions (see ExpectFor).
	Expect  *Expect
	Expects []*Expect
	// Line is where the step starts in its file.
	Line int
}

// ExpectFor is the step's expectation for the Kubernetes version: the
// first of Expects that holds for it, or Expect when it does. None (nil)
// when the step expects nothing, and when no expectation holds for the
// version (see Expects).
func (st *Step) ExpectFor(version string) *Expect {
	for _, e := range st.Expects {
		if e.versions.Holds(version) {
			return e
		}
	}
	if st.Expect != nil && st.Expect.versions.Holds(version) {
		return st.Expect
	}
	return nil
}

// HasExpect reports whether the step has an expectation for some version.
func (st *Step) HasExpect() bool { return st.Expect != nil || len(st.Expects) > 0 }

// Excluded says why the step does not run on Kubernetes version (as the
// cluster reports it; "" when no cluster said it yet): its kubernetes
// constraint excludes it, or none of its expectations holds for it; ""
// when it runs. docs/behaviour.md is checked against it.
func (st *Step) Excluded(version string) string {
	if st.Kubernetes.String() == "" && st.Expects == nil && (st.Expect == nil || st.Expect.Kubernetes == "") {
		return ""
	}
	if version == "" {
		return "the step is for some Kubernetes versions only, and no cluster says its version yet"
	}
	if !st.Kubernetes.Holds(version) {
		return fmt.Sprintf("the step is for Kubernetes %s; this cluster runs %s", st.Kubernetes, version)
	}
	if st.HasExpect() && st.ExpectFor(version) == nil {
		var holds []string
		for _, e := range append(st.Expects, st.Expect) {
			if e != nil {
				holds = append(holds, e.Kubernetes)
			}
		}
		return fmt.Sprintf("the step's expectations are for Kubernetes %s; this cluster runs %s", strings.Join(holds, ", "), version)
	}
	return ""
}

// Action is a step kind's decoded parameters and what running them does.
// Each kind is one file; all kinds are listed in registry.go.
type Action interface {
	// Validate checks the parameters before anything starts.
	Validate(v *Validator) error
	// Run does the step. Check results go through sc; an error means the
	// step could not be done at all.
	Run(ctx context.Context, sc *StepContext) error
}

// responder is implemented by kinds whose result is an HTTP response that
// expectations can be matched against.
type responder interface{ responds() }

// Validator carries what validation of one step needs to know.
type Validator struct {
	scenario *Scenario
	step     *Step
	field    string // the kind's key
	// tokens saved by earlier steps.
	tokens map[string]bool
}

// Errorf returns a scenario error at the step, naming field (relative to
// the kind's parameters).
func (v *Validator) Errorf(field, format string, args ...any) error {
	path := v.field
	if field != "" {
		path += "." + field
	}
	return &ScenarioError{File: v.scenario.File, Line: v.step.Line, Field: v.stepPath() + "." + path, Msg: fmt.Sprintf(format, args...)}
}

func (v *Validator) stepPath() string {
	return fmt.Sprintf("step %q", v.step.ID)
}

// TokenDefined reports whether an earlier step saves a token under name.
func (v *Validator) TokenDefined(name string) bool { return v.tokens[name] }

// DefineToken records that this step saves a token under name.
func (v *Validator) DefineToken(name string) { v.tokens[name] = true }

// ManifestExists reports whether a manifest can be found by name.
func (v *Validator) ManifestExists(name string) bool {
	_, err := readManifest(v.scenario, name)
	return err == nil
}

// readManifest finds a manifest: beside a scenario read from disk first,
// then among the embedded manifests.
func readManifest(sc *Scenario, name string) ([]byte, error) {
	if sc.dir != "" && !strings.Contains(name, "..") {
		if data, err := os.ReadFile(sc.dir + "/" + name); err == nil {
			return data, nil
		}
	}
	return embeddedManifest(name)
}
