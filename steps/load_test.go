package steps

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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

// TestEmbeddedHints: in hands-on mode the attendee does every main step of
// these kinds, so each needs a hint in every language the lab speaks.
func TestEmbeddedHints(t *testing.T) {
	attendee := []string{"request", "serviceAccountToken", "apply", "delete", "apiserverFlags"}
	all, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		for _, st := range sc.Steps {
			if !slices.Contains(attendee, st.Kind) {
				continue
			}
			if len(st.Hints) == 0 {
				t.Errorf("%s: %s step %s has no hints", sc.Name, st.Kind, st.ID)
			}
			for i, h := range st.Hints {
				for _, lang := range Languages {
					if strings.TrimSpace(h[lang]) == "" {
						t.Errorf("%s: step %s hint %d has no %s text", sc.Name, st.ID, i+1, lang)
					}
				}
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
		{"hint-language.yaml", 10, `step "x".hints[0].fr`, "unknown language (known: en, ja)"},
		{"exposure-verdict.yaml", 7, `step "exposure".anonymousExposure.accept[1]`, `"closed": want off, health-only, rbac-limited, exposed`},
		{"exposure-allow.yaml", 7, `step "exposure".anonymousExposure.allow[1]`, "give exactly one of resources, nonResourceURLs"},
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

var update = flag.Bool("update", false, "rewrite the README's scenario field tables (TestREADMEFields)")

// fieldDocs describes every field the loader accepts, keyed as the tables
// in README.md show them: scenario fields by name, the fields every step
// has as "step.NAME", a step kind by its name and its parameters as
// "KIND.NAME", expectations as "expect.NAME" ("[]" for a list's entries).
var fieldDocs = map[string]string{
	"name":        "Required. Lower-case letters, digits and dashes.",
	"title":       "Required, at least in English. A string (English) or one text per language: `{en: ..., ja: ...}`.",
	"description": "Optional text: what the scenario shows.",
	"steps":       "Required, at least one. Run in order; a step that cannot run at all skips the rest.",
	"cleanup":     "Steps run after the others, in order, whatever happened (Ctrl-C included).",

	"step.id":         "Required, unique among steps and cleanup. Lower-case letters, digits and dashes.",
	"step.title":      "Required text, as the scenario's `title`.",
	"step.explain":    "Optional text (Markdown), shown before the step runs.",
	"step.hints":      "Optional list of texts for hands-on mode, shown one at a time (`h`): the first says what to think about, the last nearly gives the command.",
	"step.kubernetes": "Optional: the Kubernetes versions the step runs on, a semantic-version constraint (`\">=1.24\"`, `\"<1.32\"`, `\"~1.31\"`); on any other the step is skipped, saying why.",
	"step.expect":     "Optional: what the step must show; every field set is one check (see below). Or a list, one per range of versions: the first whose `kubernetes` holds for the cluster's version applies (each but the last needs one); a step none holds for is skipped, saying why.",

	"cluster":                                   "`create` or `destroy`. Creates the cluster through the backend (a no-op when it runs already), or deletes it (skipped with `--keep`). Every other step needs a running cluster: a `cluster: create` step must come before it.",
	"serviceAccountToken":                       "Gets a token for a ServiceAccount, creating the ServiceAccount if no controller has.",
	"serviceAccountToken.from":                  "`secret`: read from the ServiceAccount's token Secret, as the article does (`kubectl get secret … -o jsonpath='{.data.token}' | base64 -d`); `tokenRequest`: the TokenRequest API (`kubectl create token`). Default `secret` before Kubernetes 1.24 (from 1.24 on no such Secret is made), else `tokenRequest`.",
	"serviceAccountToken.namespace":             "Default `default`.",
	"serviceAccountToken.serviceAccount":        "Default `default`.",
	"serviceAccountToken.saveAs":                "Required: the name later `request` steps give as `token`.",
	"request":                                   "One HTTPS request, TLS verified against the cluster CA; `expect` is matched against its answer.",
	"request.as":                                "`anonymous` or `admin`; or give `token` instead.",
	"request.token":                             "The `saveAs` name of an earlier `serviceAccountToken` step.",
	"request.method":                            "`GET` (default) or `HEAD`: the lab only reads.",
	"request.path":                              "Required, starting with `/`: e.g. `/api`.",
	"apply":                                     "Server-side apply. Bindings to `system:anonymous` or `system:unauthenticated` only on clusters the lab created.",
	"apply.manifests":                           "Files embedded in `manifests/`, or beside the scenario file.",
	"delete":                                    "Deletes the manifests' objects; gone already is fine.",
	"delete.manifests":                          "As for `apply`.",
	"apiserverFlags":                            "Changes kube-apiserver's flags through the backend and waits until the new one serves; a change it will not start with is rolled back.",
	"apiserverFlags.set":                        "Flags to add or replace, `--name=value`.",
	"apiserverFlags.remove":                     "Flags to drop, `--name`.",
	"apiserverFlags.files":                      "`{name: manifest}`: files written where kube-apiserver can read them; a flag refers to one as `$(FILES)/name`.",
	"apiserverFlags.restore":                    "`true`: put the original flags back; given alone.",
	"apiserverPod":                              "Waits until the kube-apiserver static Pod's readiness is `ready` (kind); skipped, with why, where no kubelet runs kube-apiserver.",
	"apiserverPod.ready":                        "Required: `true` or `false`.",
	"apiserverPod.within":                       "How long to wait, a Go duration (default `2m`).",
	"cisAudit":                                  "CIS Benchmark 1.2.1 and 1.2.6–1.2.8 judged from kube-apiserver's flags (and its AuthenticationConfiguration), kube-bench style, with remediation.",
	"anonymousExposure":                         "Read-only: what anonymous users can reach. Anonymous requests to `/api`, `/apis`, `/version`, `/healthz`, `/livez`, `/readyz`, `/.well-known/openid-configuration`, `/openid/v1/jwks`, namespaces and `kube-public`'s `cluster-info`; then, as the admin, a SubjectAccessReview for `system:anonymous` in `system:unauthenticated` for every verb of every discovered resource, every path `GET /` lists and every rule of the RBAC bindings that name them. The verdict: `off` (every request 401), `health-only` (only the health paths reached, KEP-4633), `rbac-limited` (nothing beyond `allow`) or `exposed` (listed, with the binding that grants it). Writes nothing.",
	"anonymousExposure.allow":                   "What anonymous users may do without it counting as exposure: RBAC rules, each optionally in one namespace. Default: Kubernetes' own, `get` on `/healthz`, `/livez`, `/readyz`, `/version`, `/version/` (`system:public-info-viewer`) and `get` of the ConfigMap `cluster-info` in `kube-public` (kubeadm). Given, it replaces the default.",
	"anonymousExposure.allow[].verbs":           "Required, as in RBAC: `[get]`, `[\"*\"]`.",
	"anonymousExposure.allow[].apiGroups":       "Required with `resources` (`\"\"` is the core group).",
	"anonymousExposure.allow[].resources":       "As in RBAC (`pods`, `pods/log`, `*`); give this or `nonResourceURLs`.",
	"anonymousExposure.allow[].resourceNames":   "Optional: only these objects.",
	"anonymousExposure.allow[].nonResourceURLs": "Paths, as in RBAC (`/version`, `/healthz/*`).",
	"anonymousExposure.allow[].namespace":       "Optional, with `resources`: only in this namespace.",
	"anonymousExposure.accept":                  "The verdicts that pass (default `[off, health-only, rbac-limited]`); `[off, health-only]` fails unless anonymous requests reach at most the health paths.",
	"cisAudit.expect":                           "`PASS` or `FAIL` for each control named (1.2.1, 1.2.6, 1.2.7, 1.2.8): `{\"1.2.1\": FAIL, \"1.2.6\": PASS}`.",

	"expect.status":              "The HTTP status code (`request` steps).",
	"expect.reason":              "The `reason` of a Status body (`Forbidden`), exact (`request` steps).",
	"expect.message":             "The `message` of a Status body, exact (`request` steps).",
	"expect.messageContains":     "A part of that message (`request` steps).",
	"expect.jsonpath":            "Values in the body, by kubectl's JSONPath; several results are joined by spaces (`request` steps).",
	"expect.jsonpath[].path":     "Required: e.g. `{.items[*].metadata.name}`.",
	"expect.jsonpath[].equals":   "The exact value; give this or `contains`.",
	"expect.jsonpath[].contains": "A part of the value.",
	"expect.rolledBack":          "`true`: kube-apiserver must refuse the flag change, and the lab puts the previous flags back (`apiserverFlags` steps only).",
	"expect.errorContains":       "A part of kube-apiserver's own error line when it refused (with `rolledBack`; `apiserverFlags` steps only).",
	"expect.kubernetes":          "The versions the expectation holds for, as the step's `kubernetes`; on others the step is skipped, saying why.",
}

// TestREADMEFields keeps the README's field tables (between the
// fields:begin and fields:end markers) equal to what the loader accepts,
// generated from its types; -update rewrites them.
func TestREADMEFields(t *testing.T) {
	const begin, end = "<!-- fields:begin (go test ./steps -run TestREADMEFields -update) -->\n", "<!-- fields:end -->\n"
	tables, keys := fieldTables()
	for _, k := range keys {
		if fieldDocs[k] == "" {
			t.Errorf("the loader accepts %q, but fieldDocs does not describe it", k)
		}
	}
	for k := range fieldDocs {
		if !slices.Contains(keys, k) {
			t.Errorf("fieldDocs describes %q, which the loader does not accept", k)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(readme), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the markers %q and %q", begin, end)
	}
	want := before + begin + tables + end + after
	if *update {
		if err := os.WriteFile("../README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(readme) != want {
		t.Errorf("README.md's field tables differ from what the loader accepts; run go test ./steps -run TestREADMEFields -update\n--- want between the markers:\n%s", tables)
	}
}

// fieldTables renders the Markdown tables of every field the loader
// accepts, and returns the fieldDocs keys of their rows.
func fieldTables() (string, []string) {
	var b strings.Builder
	var keys []string
	table := func(heading string, rows func(row func(key, shown string, t reflect.Type))) {
		fmt.Fprintf(&b, "%s\n\n| field | type | meaning |\n| --- | --- | --- |\n", heading)
		rows(func(key, shown string, t reflect.Type) {
			keys = append(keys, key)
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", shown, typeName(t), strings.ReplaceAll(fieldDocs[key], "|", `\|`))
		})
		b.WriteString("\n")
	}
	// nested lists a struct's fields, then those of the structs it holds.
	var nested func(row func(key, shown string, t reflect.Type), prefix string, t reflect.Type)
	nested = func(row func(key, shown string, t reflect.Type), prefix string, t reflect.Type) {
		for _, f := range yamlFieldList(t) {
			row(prefix+f.Name, prefix+f.Name, f.Type)
			switch elem := deref(f.Type); {
			case elem.Kind() == reflect.Struct && !isText(elem):
				nested(row, prefix+f.Name+".", elem)
			case elem.Kind() == reflect.Slice && deref(elem.Elem()).Kind() == reflect.Struct && deref(elem.Elem()) != reflect.TypeFor[yaml.Node]():
				nested(row, prefix+f.Name+"[].", deref(elem.Elem()))
			}
		}
	}
	table("**Scenario**", func(row func(key, shown string, t reflect.Type)) {
		for _, f := range yamlFieldList(reflect.TypeFor[scenarioFields]()) {
			row(f.Name, f.Name, f.Type)
		}
	})
	table("**Every step** (in `steps` and `cleanup`), beside exactly one step kind", func(row func(key, shown string, t reflect.Type)) {
		for _, f := range commonStepFields {
			row("step."+f.Name, f.Name, f.Type)
		}
	})
	table("**Step kinds** and their parameters", func(row func(key, shown string, t reflect.Type)) {
		for _, kind := range KindNames() {
			t := reflect.TypeOf(registry[kind]()).Elem()
			row(kind, kind, t)
			if t.Kind() == reflect.Struct {
				nested(row, kind+".", t)
			}
		}
	})
	table("**`expect`**: every field set is one check", func(row func(key, shown string, t reflect.Type)) {
		nested(row, "expect.", reflect.TypeFor[Expect]())
	})
	return b.String(), keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isText(t reflect.Type) bool { return t == reflect.TypeFor[Text]() }

// typeName is how a field's Go type reads in YAML.
func typeName(t reflect.Type) string {
	t = deref(t)
	switch {
	case isText(t):
		return "text"
	case t == reflect.TypeFor[yaml.Node]():
		return "step"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Map:
		return "mapping to " + typeName(t.Elem()) + "s"
	case reflect.Struct:
		return "mapping"
	}
	panic("typeName: no YAML name for " + t.String())
}

// TestLoadFileManifestBeside: a scenario file may name manifests that sit
// beside it (validated at load, as the embedded ones are).
func TestLoadFileManifestBeside(t *testing.T) {
	if _, err := LoadFile("testdata/beside/scenario.yaml"); err != nil {
		t.Errorf("LoadFile: %v", err)
	}
	data, err := os.ReadFile("testdata/beside/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("elsewhere.yaml", data); err == nil || !strings.Contains(err.Error(), "no such manifest") {
		t.Errorf("Parse without the file's directory: %v, want no such manifest", err)
	}
}
