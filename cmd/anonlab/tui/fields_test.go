package tui

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps"
)

// The checks' names come from the engine's Expect.Match, so that a check
// renamed there and not here fails.
func TestCheckedFields(t *testing.T) {
	t.Parallel()
	value := "x"
	cases := []struct {
		Name   string
		Expect steps.Expect
		Want   []string
	}{
		{"status is the code", steps.Expect{Status: 200}, []string{"code"}},
		{"reason", steps.Expect{Reason: value}, []string{"reason"}},
		{"message", steps.Expect{Message: value}, []string{"message"}},
		{"message contains", steps.Expect{MessageContains: value}, []string{"message"}},
		{"top-level jsonpath", steps.Expect{JSONPath: []steps.JSONPathExpect{{Path: "{.kind}", Equals: &value}}}, []string{"kind"}},
		{"jsonpath through an array", steps.Expect{JSONPath: []steps.JSONPathExpect{{Path: "{.items[*].metadata.name}", Equals: &value}}}, []string{"items.metadata.name"}},
		{"jsonpath contains", steps.Expect{JSONPath: []steps.JSONPathExpect{{Path: "{.items[0].metadata.name}", Contains: &value}}}, []string{"items.metadata.name"}},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			var checks []steps.Check
			for _, c := range tc.Expect.Match(&steps.Response{Body: []byte("{}")}) {
				checks = append(checks, steps.Check{Name: c.Name})
			}
			if len(checks) != 1 {
				t.Fatalf("Match made %d checks, want 1", len(checks))
			}
			var got []string
			for f := range checkedFields(checks) {
				got = append(got, f)
			}
			if !reflect.DeepEqual(got, tc.Want) {
				t.Errorf("checkedFields(%q) = %v, want %v", checks[0].Name, got, tc.Want)
			}
		})
	}
}

// A check that reads no body field marks nothing.
func TestCheckedFieldsUnknown(t *testing.T) {
	t.Parallel()
	if got := checkedFields([]steps.Check{{Name: "rolled back"}}); len(got) != 0 {
		t.Errorf("checkedFields(rolled back) = %v, want none", got)
	}
}

func TestMarkFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name   string
		Body   string
		Fields []string
		Want   []string // the marked lines, trimmed
	}{
		{"a Status", status(403, "Forbidden", forbiddenAPI), []string{"code", "message"},
			[]string{`"message": "forbidden: User \"system:anonymous\" cannot get path \"/api\"",`, `"code": 403`}},
		{"the names in a list, not the labels", namespaceList(), []string{"items.metadata.name"},
			[]string{`"name": "default",`, `"name": "kube-node-lease",`, `"name": "kube-public",`, `"name": "kube-system",`}},
		{"not JSON", "ok", []string{"code"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			fields := map[string]bool{}
			for _, f := range tc.Fields {
				fields[f] = true
			}
			lines := strings.Split(tc.Body, "\n")
			var got []string
			for i, marked := range markFields(lines, fields) {
				if marked {
					got = append(got, strings.TrimSpace(lines[i]))
				}
			}
			if !reflect.DeepEqual(got, tc.Want) {
				t.Errorf("marked %q, want %q", got, tc.Want)
			}
		})
	}
}

func TestShellWrap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name  string
		Cmd   string
		Width int
		Want  string
	}{
		{"fits", "curl --cacert ca.crt https://127.0.0.1:6443/api", 80, "curl --cacert ca.crt https://127.0.0.1:6443/api"},
		{"cut between arguments", "curl --cacert /tmp/anonlab-local/ca.crt https://127.0.0.1:6443/api", 44,
			"curl --cacert /tmp/anonlab-local/ca.crt \\\n  https://127.0.0.1:6443/api"},
		{"never inside quotes", `curl -H "Authorization: Bearer $SA_TOKEN" https://127.0.0.1:6443/api`, 20,
			"curl -H \\\n  \"Authorization: Bearer $SA_TOKEN\" \\\n  https://127.0.0.1:6443/api"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			got := shellWrap(tc.Cmd, tc.Width)
			if got != tc.Want {
				t.Errorf("shellWrap(%q, %d) =\n%s\nwant\n%s", tc.Cmd, tc.Width, got, tc.Want)
			}
			// A shell joins the lines back into the command.
			if joined := strings.ReplaceAll(got, " \\\n  ", " "); joined != tc.Cmd {
				t.Errorf("the lines join into %q, want %q", joined, tc.Cmd)
			}
		})
	}
}

// Bodies as kube-apiserver writes them (pretty-printed by the engine).

func status(code int, reason, message string) string {
	return fmt.Sprintf(`{
  "kind": "Status",
  "apiVersion": "v1",
  "metadata": {},
  "status": "Failure",
  "message": %q,
  "reason": %q,
  "details": {},
  "code": %d
}
`, message, reason, code)
}

func namespaceList() string {
	var items []string
	for _, ns := range []string{"default", "kube-node-lease", "kube-public", "kube-system"} {
		items = append(items, fmt.Sprintf(`    {
      "metadata": {
        "name": %q,
        "labels": {
          "kubernetes.io/metadata.name": %q
        }
      },
      "status": {
        "phase": "Active"
      }
    }`, ns, ns))
	}
	return "{\n  \"kind\": \"NamespaceList\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {\n    \"resourceVersion\": \"213\"\n  },\n  \"items\": [\n" +
		strings.Join(items, ",\n") + "\n  ]\n}\n"
}

// TestExchangeShowsWhy: an exchange with an audit record shows why the
// answer was what it was beside the status; one without shows no such line.
func TestExchangeShowsWhy(t *testing.T) {
	m := NewWalkthrough(nil)
	ex := steps.HTTPExchange{Method: "GET", Path: "/api", Identity: "anonymous", Status: 401, StatusText: "Unauthorized",
		Command: "curl --cacert ca.crt https://127.0.0.1:6443/api"}
	if got := plain(m.exchange(ex, nil, 100)); strings.Contains(got, "Why") {
		t.Errorf("no audit record, yet a Why line:\n%s", got)
	}
	ex.Audit = &steps.AuditRecord{Why: "not authenticated (401): anonymous requests are off"}
	if got := plain(m.exchange(ex, nil, 100)); !strings.Contains(got, "Why      not authenticated (401): anonymous requests are off") {
		t.Errorf("the audit record's why is not shown:\n%s", got)
	}
}
