package steps

import (
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

// FuzzMatch: matching never panics, and a well-formed expectation that
// matches the response it was made from holds.
func FuzzMatch(f *testing.F) {
	f.Add(403, "Forbidden", "forbidden: x", "{.kind}", []byte(`{"kind":"Status","reason":"Forbidden"}`))
	f.Add(200, "", "", "{.items[*].metadata.name}", []byte(`{"items":[{"metadata":{"name":"default"}}]}`))
	f.Add(401, "Unauthorized", "Unauthorized", "{.missing}", []byte(`not json`))
	f.Add(0, "", "", "{[", []byte(`{}`))
	f.Fuzz(func(t *testing.T, status int, reason, message, path string, body []byte) {
		r := &Response{Status: status, Reason: reason, Message: message, Body: body}
		e := &Expect{Status: status, Reason: reason, Message: message, MessageContains: message, JSONPath: []JSONPathExpect{{Path: path, Contains: new(string)}}}
		checks := e.Match(r)
		if e.validate("request", true, false) != nil {
			return
		}
		for _, c := range checks {
			if !c.OK && c.Name != "jsonpath "+path+" contains" {
				t.Fatalf("check %q of a response against itself failed: want %q got %q", c.Name, c.Want, c.Got)
			}
		}
	})
}
