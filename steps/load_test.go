package steps

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadEmbedded(t *testing.T) {
	all, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no embedded scenario")
	}
	for _, sc := range all {
		if sc.Title.In("ja") == sc.Title.In("en") {
			t.Errorf("%s: no Japanese title", sc.Name)
		}
		for _, st := range append(append([]*Step(nil), sc.Steps...), sc.Cleanup...) {
			if st.Title["ja"] == "" {
				t.Errorf("%s: step %s has no Japanese title", sc.Name, st.ID)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		file  string
		line  int
		field string
		msg   string
	}{
		{"syntax.yaml", 5, "", "found unexpected end of stream"},
		{"tabs.yaml", 4, "", "found character that cannot start any token"},
		{"unknown-field.yaml", 9, "verb", "unknown field"},
		{"unknown-kind.yaml", 6, "teleport", "unknown field or step kind"},
		{"duplicate-id.yaml", 7, "steps[1].id", `duplicate step id "a"`},
		{"missing-value.yaml", 9, "expect.jsonpath[0]", "give exactly one of equals, contains"},
		{"wrong-type.yaml", 8, "expect", "cannot unmarshal !!str `forbidden` into int"},
		{"missing-token.yaml", 4, "request.token", `"never-saved" is not saved by an earlier serviceAccountToken step`},
		{"missing-manifest.yaml", 4, "apply.manifests[0]", "no such manifest"},
		{"empty.yaml", 1, "", "the file is empty"},
		{"missing-field.yaml", 4, "request.path", "required"},
		{"rolled-back-request.yaml", 12, `step "a".expect.rolledBack`, "a request step changes no kube-apiserver flags"},
		{"error-contains-cluster.yaml", 8, `step "create-cluster".expect.errorContains`, "a cluster step changes no kube-apiserver flags"},
		{"remove-flag.yaml", 7, `step "flags".apiserverFlags.remove[1]`, `"anonymous-auth": a flag looks like --name`},
		{"no-cluster.yaml", 4, `step "a".request`, "needs a running cluster: add a step with cluster: create before it (the scenario has none)"},
		{"cluster-too-late.yaml", 4, `step "a".request`, "(the first is at line 7, after it)"},
		{"after-destroy.yaml", 11, `step "revoke".delete`, "the step at line 7 destroys it"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", tc.file)
			_, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile(%s) = nil error, want one at line %d", path, tc.line)
			}
			if !errors.Is(err, ErrInvalidScenario) {
				t.Errorf("error %q is not ErrInvalidScenario", err)
			}
			var se *ScenarioError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %q is not a *ScenarioError", err, err)
			}
			if se.File != path || se.Line != tc.line {
				t.Errorf("error at %s:%d, want %s:%d (%v)", se.File, se.Line, path, tc.line, err)
			}
			if !strings.Contains(se.Field, tc.field) {
				t.Errorf("error names field %q, want it to name %q (%v)", se.Field, tc.field, err)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("error says %q, want it to contain %q", se.Msg, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("error %q does not start with file:line", err)
			}
		})
	}
}
