package tui

import (
	"reflect"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps"
)

func TestCheckedFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name  string
		Check string
		Want  []string
	}{
		{"status is the code", "status", []string{"code"}},
		{"reason", "reason", []string{"reason"}},
		{"message contains", "message contains", []string{"message"}},
		{"top-level jsonpath", "jsonpath {.kind}", []string{"kind"}},
		{"jsonpath through an array", "jsonpath {.items[*].metadata.name}", []string{"items.metadata.name"}},
		{"jsonpath contains", "jsonpath {.items[0].metadata.name} contains", []string{"items.metadata.name"}},
		{"unknown check", "rolled back", nil},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for f := range checkedFields([]steps.Check{{Name: tc.Check}}) {
				got = append(got, f)
			}
			if !reflect.DeepEqual(got, tc.Want) {
				t.Errorf("checkedFields(%q) = %v, want %v", tc.Check, got, tc.Want)
			}
		})
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
