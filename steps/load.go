package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
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
	sc, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	sc.dir = filepath.Dir(path)
	return sc, nil
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

var (
	commonStepKeys = []string{"id", "title", "explain", "expect"}
	validID        = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	yamlLine       = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// Parse decodes and validates a scenario strictly: unknown fields, unknown
// step kinds, missing or ill-typed values are errors naming file, line and
// field. Nothing is run.
func Parse(file string, data []byte) (*Scenario, error) {
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
	var raw struct {
		Name        string      `yaml:"name"`
		Title       Text        `yaml:"title"`
		Description Text        `yaml:"description"`
		Steps       []yaml.Node `yaml:"steps"`
		Cleanup     []yaml.Node `yaml:"cleanup"`
	}
	if err := decodeStrict(file, root, &raw, ""); err != nil {
		return nil, err
	}
	sc := &Scenario{Name: raw.Name, Title: raw.Title, Description: raw.Description, File: file}
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
	st := &Step{Line: n.Line}
	var kindKey, kindVal, expectNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "id":
			if err := decodeStrict(file, val, &st.ID, path+".id"); err != nil {
				return nil, err
			}
		case "title":
			if err := decodeStrict(file, val, &st.Title, path+".title"); err != nil {
				return nil, err
			}
		case "explain":
			if err := decodeStrict(file, val, &st.Explain, path+".explain"); err != nil {
				return nil, err
			}
		case "expect":
			expectNode = val
			st.Expect = &Expect{}
			if err := decodeStrict(file, val, st.Expect, path+".expect"); err != nil {
				return nil, err
			}
		default:
			if _, ok := registry[k.Value]; !ok {
				return nil, &ScenarioError{File: file, Line: k.Line, Field: path + "." + k.Value,
					Msg: fmt.Sprintf("unknown field or step kind (step fields: %s; step kinds: %s)", strings.Join(commonStepKeys, ", "), strings.Join(KindNames(), ", "))}
			}
			if kindKey != nil {
				return nil, &ScenarioError{File: file, Line: k.Line, Field: path + "." + k.Value,
					Msg: fmt.Sprintf("a step has one step kind; this one already is %q", kindKey.Value)}
			}
			kindKey, kindVal = k, val
		}
	}
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
	if kindKey == nil {
		return nil, &ScenarioError{File: file, Line: n.Line, Field: path, Msg: "no step kind: add one of " + strings.Join(KindNames(), ", ")}
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
	if st.Expect != nil {
		_, responds := st.Action.(responder)
		_, changesFlags := st.Action.(*flagsStep)
		if err := st.Expect.validate(st.Kind, responds, changesFlags); err != nil {
			line := keyLine(n, "expect")
			if err.field != "" {
				line = fieldLine(expectNode, err.field)
			}
			return nil, &ScenarioError{File: file, Line: line, Field: join(path+".expect", err.field), Msg: err.msg}
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
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			maps.Copy(out, yamlFields(f.Type))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
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
