package steps

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/anonlab/anonlab/scenarios"
)

// FuzzParse: any input either parses or is rejected as an invalid scenario
// with a place in the file; never a panic, never another kind of error.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	embedded, _ := scenarios.FS.ReadFile("anonymous-auth.yaml")
	f.Add(embedded)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data)
		if err != nil {
			var se *ScenarioError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidScenario) {
				t.Fatalf("error %T %q is not a ScenarioError", err, err)
			}
			if se.File != "fuzz.yaml" {
				t.Fatalf("error names file %q", se.File)
			}
			return
		}
		if sc.Name == "" || len(sc.Steps) == 0 {
			t.Fatalf("parsed a scenario without name or steps: %+v", sc)
		}
		for _, st := range sc.Steps {
			if st.ID == "" || st.Action == nil || st.Title["en"] == "" {
				t.Fatalf("parsed an incomplete step: %+v", st)
			}
		}
	})
}

// FuzzMatch: the verdict of every check Expect.Match makes agrees with an
// oracle written apart from it: plain comparisons, a hand-written
// substring search, and a walk of the decoded body for JSONPaths of the
// form {.a.b}. The body is either the fuzzer's bytes or a JSON document
// built from its values.
func FuzzMatch(f *testing.F) {
	f.Add(403, "Forbidden", "forbidden: x", 403, "Forbidden", "", "x", "kind", "", "Status", false, []byte(`{"kind":"Status","reason":"Forbidden"}`))
	f.Add(200, "", "", 200, "", "", "", "items", "name", "default", true, []byte(nil))
	f.Add(403, "", "", 0, "", "", "", "kind", "", "Stat", false, []byte(`{"kind":"Status"}`))
	f.Add(401, "Unauthorized", "Unauthorized", 403, "Forbidden", "Unauthorized", "auth", "missing", "", "", false, []byte(`not json`))
	f.Add(0, "", "", 0, "", "", "", "a", "b", "", false, []byte(`{"a":[{"b":"c"}]}`))
	f.Add(500, "", "", 200, "", "", "", "a", "b", "x", false, []byte(`{"a":{"b":null}}`))
	f.Fuzz(func(t *testing.T, status int, reason, message string, wantStatus int, wantReason, wantMessage, wantContains, key1, key2, value string, contains bool, body []byte) {
		path := jsonPathOf(key1, key2)
		if body == nil && path != "" {
			// A body in which the path leads to value.
			doc := map[string]any{key1: value}
			if key2 != "" {
				doc[key1] = map[string]any{key2: value}
			}
			var err error
			if body, err = json.Marshal(doc); err != nil {
				t.Fatal(err)
			}
		}
		e := &Expect{Status: wantStatus, Reason: wantReason, Message: wantMessage, MessageContains: wantContains}
		var want []*bool // nil: the oracle does not know
		known := func(ok bool) *bool { return &ok }
		if wantStatus != 0 {
			want = append(want, known(wantStatus == status))
		}
		if wantReason != "" {
			want = append(want, known(wantReason == reason))
		}
		if wantMessage != "" {
			want = append(want, known(wantMessage == message))
		}
		if wantContains != "" {
			want = append(want, known(hasSubstring(message, wantContains)))
		}
		if path != "" {
			jp := JSONPathExpect{Path: path}
			if contains {
				jp.Contains = &value
			} else {
				jp.Equals = &value
			}
			e.JSONPath = []JSONPathExpect{jp}
			switch got, state := walk(body, key1, key2); state {
			case found:
				want = append(want, known(contains && hasSubstring(got, value) || !contains && got == value))
			case absent:
				want = append(want, known(false))
			default:
				want = append(want, nil)
			}
		}

		checks := e.Match(&Response{Status: status, Reason: reason, Message: message, Body: body})
		if len(checks) != len(want) {
			t.Fatalf("%d checks %+v, want %d", len(checks), checks, len(want))
		}
		for i, c := range checks {
			if want[i] != nil && c.OK != *want[i] {
				t.Errorf("check %q (want %q, got %q) OK = %v, the oracle says %v", c.Name, c.Want, c.Got, c.OK, *want[i])
			}
		}
	})
}

// jsonPathOf is {.key1.key2}, or {.key1} without key2, when the keys are
// plain identifiers; "" otherwise.
func jsonPathOf(key1, key2 string) string {
	ident := func(s string) bool {
		if s == "" || len(s) > 20 {
			return false
		}
		for i, r := range s {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (i == 0 || r < '0' || r > '9') {
				return false
			}
		}
		return true
	}
	switch {
	case !ident(key1):
		return ""
	case key2 == "":
		return "{." + key1 + "}"
	case ident(key2):
		return "{." + key1 + "." + key2 + "}"
	}
	return ""
}

type walkState int

const (
	found   walkState = iota // a string is there
	absent                   // nothing is there: not JSON, a missing key, a non-object on the way
	unknown                  // something other than a string: its printing is the library's business
)

// walk finds the string at key1(.key2) in a JSON body.
func walk(body []byte, key1, key2 string) (string, walkState) {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return "", absent
	}
	for _, k := range []string{key1, key2} {
		if k == "" {
			break
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return "", absent
		}
		if doc, ok = m[k]; !ok {
			return "", absent
		}
	}
	if s, ok := doc.(string); ok {
		return s, found
	}
	return "", unknown
}

// hasSubstring is strings.Contains written out, for the oracle.
func hasSubstring(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
