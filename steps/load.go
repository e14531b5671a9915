package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/anonlab/anonlab/manifests"
	"github.com/anonlab/anonlab/scenarios"
)

// Load reads an embedded scenario by name.
func Load(name string) (*Scenario, error) {
	data, err := fs.ReadFile(scenarios.FS, name+".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: no scenario named %q (see anonlab list)", ErrInvalidScenario, name)
	}
	return Parse("scenarios/"+name+".yaml", data)
}

// LoadFile reads a scenario from a file; manifests beside it are found too.
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ScenarioError{File: path, Msg: err.Error()}
	}
	return parse(path, data, filepath.Dir(path))
}

// List reads every embedded scenario, sorted by name.
func List() ([]*Scenario, error) {
	entries, err := fs.Glob(scenarios.FS, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, e := range entries {
		sc, err := Load(strings.TrimSuffix(e, ".yaml"))
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

func embeddedManifest(name string) ([]byte, error) {
	return fs.ReadFile(manifests.FS, name)
}

// scenarioFields are a scenario's fields as written.
type scenarioFields struct {
	Name        string      `yaml:"name"`
	Title       Text        `yaml:"title"`
	Description Text        `yaml:"description"`
	Steps       []yaml.Node `yaml:"steps"`
	Cleanup     []yaml.Node `yaml:"cleanup"`
}

// stepFields are the fields every step has beside its one step kind.
type stepFields struct {
	ID         string  `yaml:"id"`
	Title      Text    `yaml:"title"`
	Explain    Text    `yaml:"explain"`
	Hints      []Text  `yaml:"hints"`
	Kubernetes string  `yaml:"kubernetes"`
	Expect     *Expect `yaml:"expect"`
}

var (
	commonStepFields = yamlFieldList(reflect.TypeFor[stepFields]())
	validID          = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	yamlLine         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// Parse decodes and validates a scenario strictly: unknown fields, unknown
// step kinds, missing or ill-typed values are errors naming file, line and
// field. Nothing is run.
func Parse(file string, data []byte) (*Scenario, error) { return parse(file, data, "") }

// parse is Parse for a scenario whose manifests may also sit in dir.
func parse(file string, data []byte, dir string) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, "", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Value == "" {
		return nil, &ScenarioError{File: file, Line: 1, Msg: "the file is empty: a scenario needs name, title and steps"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ScenarioError{File: file, Line: root.Line, Msg: "a scenario is a mapping with name, title and steps"}
	}
	var raw scenarioFields
	if err := decodeStrict(file, root, &raw, ""); err != nil {
		return nil, err
	}
	sc := &Scenario{Name: raw.Name, Title: raw.Title, Description: raw.Description, File: file, dir: dir}
	if sc.Name == "" {
		return nil, &ScenarioError{File: file, Line: root.Line, Field: "name", Msg: "required"}
	}
	if !validID.MatchString(sc.Name) {
		return nil, &ScenarioError{File: file, Line: keyLine(root, "name"), Field: "name", Msg: "use lower-case letters, digits and dashes"}
	}
	if err := checkText(file, keyLine(root, "title"), "title", sc.Title, true); err != nil {
		return nil, err
	}
	if err := checkText(file, keyLine(root, "description"), "description", sc.Description, false); err != nil {
		return nil, err
	}
	if len(raw.Steps) == 0 {
		return nil, &ScenarioError{File: file, Line: root.Line, Field: "steps", Msg: "required: at least one step"}
	}
	v := &Validator{scenario: sc, tokens: map[string]bool{}}
	ids := map[string]int{}
	for i := range raw.Steps {
		st, err := decodeStep(v, &raw.Steps[i], fmt.Sprintf("steps[%d]", i), ids)
		if err != nil {
			return nil, err
		}
		sc.Steps = append(sc.Steps, st)
	}
	for i := range raw.Cleanup {
		st, err := decodeStep(v, &raw.Cleanup[i], fmt.Sprintf("cleanup[%d]", i), ids)
		if err != nil {
			return nil, err
		}
		sc.Cleanup = append(sc.Cleanup, st)
	}
	if err := checkClusterOrder(sc); err != nil {
		return nil, err
	}
	return sc, nil
}

func decodeStep(v *Validator, n *yaml.Node, path string, ids map[string]int) (*Step, error) {
	file := v.scenario.File
	if n.Kind != yaml.MappingNode {
		return nil, &ScenarioError{File: file, Line: n.Line, Field: path, Msg: "a step is a mapping with id, title and one step kind"}
	}
	var common stepFields
	fields := reflect.ValueOf(&common).Elem()
	var kindKey, kindVal, expectNode *yaml.Node
	var expects []*Expect // expect as a list: one per range of versions
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "expect" && val.Kind == yaml.SequenceNode {
			if err := decodeStrict(file, val, &expects, path+".expect"); err != nil {
				return nil, err
			}
			expectNode = val
			continue
		}
		if j := slices.IndexFunc(commonStepFields, func(f yamlField) bool { return f.Name == k.Value }); j >= 0 {
			if err := decodeStrict(file, val, fields.FieldByIndex(commonStepFields[j].Index).Addr().Interface(), path+"."+k.Value); err != nil {
				return nil, err
			}
			if k.Value == "expect" {
				expectNode = val
			}
			continue
		}
		if _, ok := registry[k.Value]; !ok {
			names := make([]string, len(commonStepFields))
			for j, f := range commonStepFields {
				names[j] = f.Name
			}
			return nil, &ScenarioError{File: file, Line: k.Line, Field: path + "." + k.Value,
				Msg: fmt.Sprintf("unknown field or step kind (step fields: %s; step kinds: %s)", strings.Join(names, ", "), strings.Join(KindNames(), ", "))}
		}
		if kindKey != nil {
			return nil, &ScenarioError{File: file, Line: k.Line, Field: path + "." + k.Value,
				Msg: fmt.Sprintf("a step has one step kind; this one already is %q", kindKey.Value)}
		}
		kindKey, kindVal = k, val
	}
	if expectNode != nil && common.Expect == nil && expects == nil {
		common.Expect = &Expect{} // "expect:" with nothing: reported as empty below
	}
	st := &Step{ID: common.ID, Title: common.Title, Explain: common.Explain, Hints: common.Hints, Expect: common.Expect, Expects: expects, Line: n.Line}
	if st.ID == "" {
		return nil, &ScenarioError{File: file, Line: n.Line, Field: path + ".id", Msg: "required"}
	}
	if !validID.MatchString(st.ID) {
		return nil, &ScenarioError{File: file, Line: keyLine(n, "id"), Field: path + ".id", Msg: fmt.Sprintf("%q: use lower-case letters, digits and dashes", st.ID)}
	}
	if first, dup := ids[st.ID]; dup {
		return nil, &ScenarioError{File: file, Line: keyLine(n, "id"), Field: path + ".id", Msg: fmt.Sprintf("duplicate step id %q (first at line %d)", st.ID, first)}
	}
	ids[st.ID] = n.Line
	path = fmt.Sprintf("step %q", st.ID)
	if err := checkText(file, keyLine(n, "title"), path+".title", st.Title, true); err != nil {
		return nil, err
	}
	if err := checkText(file, keyLine(n, "explain"), path+".explain", st.Explain, false); err != nil {
		return nil, err
	}
	for i, h := range st.Hints {
		if err := checkText(file, fieldLine(n, fmt.Sprintf("hints[%d]", i)), fmt.Sprintf("%s.hints[%d]", path, i), h, true); err != nil {
			return nil, err
		}
	}
	if kindKey == nil {
		return nil, &ScenarioError{File: file, Line: n.Line, Field: path, Msg: "no step kind: add one of " + strings.Join(KindNames(), ", ")}
	}
	var err error
	if st.Kubernetes, err = parseVersions(common.Kubernetes); err != nil {
		return nil, &ScenarioError{File: file, Line: keyLine(n, "kubernetes"), Field: path + ".kubernetes", Msg: err.Error()}
	}
	st.Kind = kindKey.Value
	st.Action = registry[st.Kind]()
	if err := decodeStrict(file, kindVal, st.Action, path+"."+st.Kind); err != nil {
		return nil, err
	}
	v.step, v.field = st, st.Kind
	if err := st.Action.Validate(v); err != nil {
		return nil, err
	}
	_, responds := st.Action.(responder)
	_, changesFlags := st.Action.(*flagsStep)
	check := func(e *Expect, prefix string) error {
		err := e.validate(st.Kind, responds, changesFlags)
		if err == nil {
			return nil
		}
		line, field := keyLine(n, "expect"), path+".expect"+prefix
		if prefix != "" {
			line = fieldLine(expectNode, prefix)
		}
		if err.field != "" {
			line, field = fieldLine(expectNode, strings.TrimPrefix(prefix+"."+err.field, ".")), field+"."+err.field
		}
		return &ScenarioError{File: file, Line: line, Field: field, Msg: err.msg}
	}
	if st.Expect != nil {
		if err := check(st.Expect, ""); err != nil {
			return nil, err
		}
	}
	if expectNode != nil && expectNode.Kind == yaml.SequenceNode && len(expects) == 0 {
		return nil, &ScenarioError{File: file, Line: expectNode.Line, Field: path + ".expect", Msg: "an empty list: give one expectation, or one per range of versions"}
	}
	for i, e := range expects {
		if err := check(e, fmt.Sprintf("[%d]", i)); err != nil {
			return nil, err
		}
		if e.Kubernetes == "" && i < len(expects)-1 {
			return nil, &ScenarioError{File: file, Line: fieldLine(expectNode, fmt.Sprintf("[%d]", i)), Field: fmt.Sprintf("%s.expect[%d].kubernetes", path, i),
				Msg: "required in a list of expectations, but in the last one (which holds for the versions the others do not)"}
		}
	}
	return st, nil
}

// checkClusterOrder rejects a step that would run with no cluster: every
// step kind but cluster acts on one, so a cluster: create step must come
// before it (cleanup steps run after the steps, in the same order).
func checkClusterOrder(sc *Scenario) error {
	all := slices.Concat(sc.Steps, sc.Cleanup)
	clusterAction := func(st *Step) string {
		if c, ok := st.Action.(*clusterStep); ok {
			return string(*c)
		}
		return ""
	}
	up, destroyedAt := false, 0
	for _, st := range all {
		switch clusterAction(st) {
		case "create":
			up = true
			continue
		case "destroy":
			up, destroyedAt = false, st.Line
			continue
		}
		if up {
			continue
		}
		msg := fmt.Sprintf("a %s step needs a running cluster: add a step with cluster: create before it", st.Kind)
		if destroyedAt > 0 {
			msg = fmt.Sprintf("a %s step needs a running cluster, and the step at line %d destroys it: add a step with cluster: create between them", st.Kind, destroyedAt)
		} else if i := slices.IndexFunc(all, func(s *Step) bool { return clusterAction(s) == "create" }); i < 0 {
			msg += " (the scenario has none)"
		} else {
			msg += fmt.Sprintf(" (the first is at line %d, after it)", all[i].Line)
		}
		return &ScenarioError{File: sc.File, Line: st.Line, Field: fmt.Sprintf("step %q.%s", st.ID, st.Kind), Msg: msg}
	}
	return nil
}

func checkText(file string, line int, field string, t Text, required bool) error {
	if required && t["en"] == "" {
		return &ScenarioError{File: file, Line: line, Field: field, Msg: "required (at least in English: en)"}
	}
	for lang := range t {
		if !slices.Contains(Languages, lang) {
			return &ScenarioError{File: file, Line: line, Field: field + "." + lang, Msg: "unknown language (known: " + strings.Join(Languages, ", ") + ")"}
		}
	}
	return nil
}

// keyLine is the line of key in mapping n, or n's own line.
func keyLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// fieldLine is the line of field ("jsonpath[0].path") under n: of its key,
// or of the deepest part of it found.
func fieldLine(n *yaml.Node, field string) int {
	line := n.Line
	for part := range strings.SplitSeq(strings.ReplaceAll(field, "[", ".["), ".") {
		if part == "" {
			continue // "[0].status": a list at the top
		}
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		next := (*yaml.Node)(nil)
		if i, err := strconv.Atoi(strings.Trim(part, "[]")); err == nil && strings.HasPrefix(part, "[") {
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		} else if n.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == part {
					line, next = n.Content[j].Line, n.Content[j+1]
					break
				}
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// decodeStrict decodes n into v after checking that every mapping key names
// a field of the target type: yaml.v3's own strict mode (KnownFields) is not
// available to Node.Decode.
func decodeStrict(file string, n *yaml.Node, v any, path string) error {
	if err := knownFields(file, n, reflect.TypeOf(v), path); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return yamlError(file, path, err)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func knownFields(file string, n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == reflect.TypeFor[yaml.Node]() || reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the type error with its line
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				return &ScenarioError{File: file, Line: k.Line, Field: join(path, k.Value), Msg: "unknown field (known: " + strings.Join(names, ", ") + ")"}
			}
			if err := knownFields(file, n.Content[i+1], ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				if err := knownFields(file, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := knownFields(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for _, f := range yamlFieldList(t) {
		out[f.Name] = f.Type
	}
	return out
}

// yamlField is a struct field as yaml.v3 decodes it.
type yamlField struct {
	Name  string // the YAML key
	Type  reflect.Type
	Index []int // for reflect.Value.FieldByIndex
}

// yamlFieldList is struct type t's YAML keys in declaration order, with
// yaml.v3's rules: "-" skips a field, ",inline" lifts its fields, and an
// untagged field is its lower-cased name.
func yamlFieldList(t reflect.Type) []yamlField {
	var out []yamlField
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for _, in := range yamlFieldList(f.Type) {
				in.Index = slices.Concat(f.Index, in.Index)
				out = append(out, in)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, yamlField{Name: name, Type: f.Type, Index: f.Index})
	}
	return out
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// yamlError turns yaml.v3's "line N: ..." messages into ScenarioErrors.
func yamlError(file, path string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ScenarioError{File: file, Line: line, Field: path, Msg: m[2]}
	}
	return &ScenarioError{File: file, Field: path, Msg: msg}
}
