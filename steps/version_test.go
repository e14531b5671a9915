package steps

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionsHolds(t *testing.T) {
	cases := []struct {
		constraint, version string
		want                bool
	}{
		{"", "v1.20.2", true},
		{"", "", true},
		{">=1.24", "v1.20.2", false},
		{">=1.24", "v1.24.0", true},
		{">=1.24", "v1.37.2", true},
		{"<1.24", "v1.23.17", true},
		{"<1.24", "v1.24.0", false},
		{"~1.31", "v1.31.4", true},
		{"~1.31", "v1.32.0", false},
		{">=1.32", "v1.32.0-eks-1a2b3c", true}, // a vendor's suffix is no pre-release
		{">=1.24", "", false},                  // not known: only the empty constraint holds
		{">=1.24", "not-a-version", false},
	}
	for _, tc := range cases {
		t.Run(tc.constraint+" "+tc.version, func(t *testing.T) {
			t.Parallel()
			v, err := parseVersions(tc.constraint)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Holds(tc.version); got != tc.want {
				t.Errorf("%q holds for %q = %v, want %v", tc.constraint, tc.version, got, tc.want)
			}
		})
	}
}

func TestExpectFor(t *testing.T) {
	sc, err := Parse("test.yaml", []byte(`name: x
title: X
steps:
  - id: create-cluster
    title: Create
    cluster: create
  - id: list
    title: List
    request: {as: anonymous, path: /api}
    expect:
      - kubernetes: ">=1.32"
        status: 401
      - kubernetes: "~1.31"
        status: 418
      - status: 403
  - id: one
    title: One
    request: {as: anonymous, path: /api}
    expect:
      kubernetes: ">=1.32"
      status: 401
  - id: plain
    title: Plain
    request: {as: anonymous, path: /api}
    expect: {status: 403}
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		step, version string
		want          int // 0: no expectation
	}{
		{"list", "v1.37.2", 401},
		{"list", "v1.32.0", 401},
		{"list", "v1.31.4", 418},
		{"list", "v1.20.2", 403},
		{"one", "v1.34.1", 401},
		{"one", "v1.20.2", 0},
		{"plain", "v1.20.2", 403},
		{"plain", "", 403},
	}
	for _, tc := range cases {
		var st *Step
		for _, s := range sc.Steps {
			if s.ID == tc.step {
				st = s
			}
		}
		got := 0
		if e := st.ExpectFor(tc.version); e != nil {
			got = e.Status
		}
		if got != tc.want {
			t.Errorf("step %s on %q expects status %d, want %d", tc.step, tc.version, got, tc.want)
		}
	}
}

func TestTokenSource(t *testing.T) {
	cases := []struct {
		from, version, want string
	}{
		{"", "v1.20.2", fromSecret},
		{"", "v1.23.17", fromSecret},
		{"", "v1.24.0", fromTokenRequest},
		{"", "v1.37.2", fromTokenRequest},
		{fromTokenRequest, "v1.20.2", fromTokenRequest},
		{fromSecret, "v1.37.2", fromSecret},
	}
	for _, tc := range cases {
		tok := &tokenStep{Namespace: "default", ServiceAccount: "default", SaveAs: "sa-token", From: tc.from}
		if got := tok.source(tc.version); got != tc.want {
			t.Errorf("from %q on %s: the token comes from %q, want %q", tc.from, tc.version, got, tc.want)
		}
	}
	tok := &tokenStep{Namespace: "ns", ServiceAccount: "sa", SaveAs: "sa-token"}
	want := `SA_TOKEN=$(kubectl get secret --namespace ns $(kubectl get serviceaccount sa --namespace ns -o jsonpath='{.secrets[0].name}') -o jsonpath='{.data.token}' | base64 -d)`
	if got := tok.shellCommand(fromSecret); got != want {
		t.Errorf("the Secret's command is\n%s\nwant\n%s", got, want)
	}
	if got, want := tok.shellCommand(fromTokenRequest), "SA_TOKEN=$(kubectl create token sa --namespace ns)"; got != want {
		t.Errorf("the TokenRequest's command is %s, want %s", got, want)
	}
}

func TestParseRejectsVersions(t *testing.T) {
	cases := []struct {
		file  string
		line  int
		field string
		msg   string
	}{
		{"bad-constraint.yaml", 9, `step "a".kubernetes`, `">=one.24" is not a version constraint`},
		{"bad-expect-constraint.yaml", 13, `step "a".expect[1].kubernetes`, `"<=>1.31" is not a version constraint`},
		{"expect-list-default.yaml", 11, `step "a".expect[0].kubernetes`, "required in a list of expectations, but in the last one"},
		{"expect-list-field.yaml", 13, `step "a".expect[1].rolledBack`, "a request step changes no kube-apiserver flags"},
		{"token-from.yaml", 7, `step "t".serviceAccountToken.from`, `"configMap": secret or tokenRequest`},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", tc.file)
			_, err := LoadFile(path)
			var se *ScenarioError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidScenario) {
				t.Fatalf("LoadFile(%s) = %v, want a ScenarioError", path, err)
			}
			if se.Line != tc.line || se.Field != tc.field || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("error %q at line %d field %q; want line %d, field %q, a message with %q", se.Msg, se.Line, se.Field, tc.line, tc.field, tc.msg)
			}
		})
	}
}
