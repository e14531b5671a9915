package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/anonlab/anonlab/steps"
)

// script is a run as the engine reports it: one step that passes, one
// whose check fails, one skipped, and cleanup.
var script = []steps.Event{
	steps.ScenarioStarted{Scenario: "demo", Title: "A demo", Backend: "local", Lang: "en", Steps: []steps.StepInfo{
		{ID: "create", Kind: "cluster", Title: "Create a cluster", Explain: "Starts a control plane."},
		{ID: "anon", Kind: "request", Title: "GET /api anonymously", Explain: "No credentials: system:anonymous."},
		{ID: "later", Kind: "request", Title: "Never reached"},
		{ID: "destroy", Kind: "cluster", Title: "Delete the cluster", Cleanup: true},
	}},
	steps.StepStarted{Step: "create", Index: 0, Title: "Create a cluster"},
	steps.Progress{Step: "create", Phase: "build", Detail: "build kube-apiserver: k8s.io/kubernetes/pkg/controlplane",
		ElapsedMS: 95300, Count: 812, Total: 2143, LeftMS: 367000},
	steps.Progress{Step: "create", Phase: "wait", Detail: "polling /readyz", ElapsedMS: 120},
	steps.ClusterState{Step: "create", Backend: "local", KubernetesVersion: "v1.37.2", URL: "https://127.0.0.1:6443", AnonymousAuth: "on", Running: true},
	steps.StepFinished{Step: "create", Index: 0, Status: steps.Passed, DurationMS: 2300},
	steps.StepStarted{Step: "anon", Index: 1, Title: "GET /api anonymously"},
	steps.HTTPExchange{Step: "anon", Identity: "anonymous", Method: "GET", Path: "/api", URL: "https://127.0.0.1:6443/api",
		Command: "curl --cacert ca.crt https://127.0.0.1:6443/api", Status: 403, StatusText: "Forbidden", Reason: "Forbidden",
		Message: `forbidden: User "system:anonymous" cannot get path "/api"`, Body: "{\n  \"kind\": \"Status\"\n}", DurationMS: 3},
	steps.Check{Step: "anon", Name: "status", Want: "403", Got: "403", OK: true},
	steps.Check{Step: "anon", Name: "reason", Want: "Unauthorized", Got: "Forbidden", OK: false},
	steps.StepFinished{Step: "anon", Index: 1, Status: steps.Failed, DurationMS: 4},
	steps.StepFinished{Step: "later", Index: 2, Status: steps.Skipped, Error: "interrupted"},
	steps.StepStarted{Step: "destroy", Index: 0, Title: "Delete the cluster", Cleanup: true},
	steps.StepFinished{Step: "destroy", Index: 0, Cleanup: true, Status: steps.Passed, DurationMS: 200},
	steps.Summary{Passed: 2, Failed: 1, Skipped: 1, DurationMS: 2510},
}

func play(s steps.Sink) {
	for _, e := range script {
		s.Emit(e)
	}
}

func TestText(t *testing.T) {
	var out, log bytes.Buffer
	txt := NewText(&out, &log)
	txt.now = func() time.Time { return time.Unix(0, 0) }
	play(txt)
	golden.RequireEqual(t, out.Bytes())
	for _, want := range []string{"polling /readyz", "… build (1m35.3s) 812/2143 packages (37%), about 6m10s left: build kube-apiserver: "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("progress %q did not go to the log stream: %q", want, log.String())
		}
	}
}

// TestTextShowsWhy: an exchange with an audit record gets a why line.
func TestTextShowsWhy(t *testing.T) {
	var out bytes.Buffer
	txt := NewText(&out, &bytes.Buffer{})
	txt.Emit(steps.HTTPExchange{Step: "x", Identity: "anonymous", Status: 403, StatusText: "Forbidden", Command: "curl",
		Audit: &steps.AuditRecord{User: "system:anonymous", Decision: "forbid", Why: "authenticated as system:anonymous (groups system:unauthenticated) → authorization: forbid"}})
	if !strings.Contains(out.String(), "why: authenticated as system:anonymous (groups system:unauthenticated) → authorization: forbid") {
		t.Errorf("no why line:\n%s", out.String())
	}
}

func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	play(NewJSONLines(&out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(script) {
		t.Fatalf("%d lines for %d events", len(lines), len(script))
	}
	var http, build map[string]any
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if m["event"] != script[i].EventName() {
			t.Errorf("line %d event %v, want %s", i, m["event"], script[i].EventName())
		}
		switch {
		case m["event"] == "http":
			http = m
		case m["event"] == "progress" && m["phase"] == "build":
			build = m
		}
	}
	for _, k := range []string{"step", "identity", "method", "path", "status", "reason", "message"} {
		if _, ok := http[k]; !ok {
			t.Errorf("http event lacks %q: %v", k, http)
		}
	}
	if build["count"] != 812.0 || build["total"] != 2143.0 || build["leftMs"] != 367000.0 {
		t.Errorf("build progress event: count %v, total %v, leftMs %v; want 812, 2143, 367000", build["count"], build["total"], build["leftMs"])
	}
	if http["status"] != 403.0 {
		t.Errorf("http status %v is not the number 403", http["status"])
	}
	golden.RequireEqual(t, out.Bytes())
}

func TestJUnit(t *testing.T) {
	var out bytes.Buffer
	play(NewJUnit(&out))
	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, out.String())
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Tests != 4 || len(doc.Suites[0].Cases) != 4 || doc.Suites[0].Failures != 1 || doc.Suites[0].Skipped != 1 {
		t.Fatalf("suite %+v: want 4 testcases, 1 failure, 1 skipped", doc.Suites)
	}
	f := doc.Suites[0].Cases[1].Failure
	if f == nil || !strings.Contains(f.Text, "want: Unauthorized") || !strings.Contains(f.Text, "got:  Forbidden") {
		t.Errorf("failure %+v lacks want and got", f)
	}
	golden.RequireEqual(t, out.Bytes())
}

func TestMatrix(t *testing.T) {
	a, b := NewObserver(), NewObserver()
	play(a)
	play(b)
	b.Steps[1].Status, b.Steps[1].Result = 401, steps.Passed
	if a.KubernetesVersion != "v1.37.2" {
		t.Errorf("observed version %q, want the ClusterState event's v1.37.2", a.KubernetesVersion)
	}
	// a asked for v1.34.4 but its ClusterState said v1.37.2 (one binary
	// for every column); c never reached a cluster.
	c := NewObserver()
	c.Emit(script[0])
	var out bytes.Buffer
	if err := WriteMatrix(&out, []string{"v1.34.4", "v1.37.2", "v1.36.3", "v1.99.0"}, map[string]*Observer{"v1.34.4": a, "v1.37.2": b, "v1.36.3": c}); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, out.Bytes())
}

func TestHandouts(t *testing.T) {
	all, err := steps.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		for _, lang := range steps.Languages {
			var sh, md bytes.Buffer
			if err := WriteShellHandout(&sh, sc, lang); err != nil {
				t.Fatal(err)
			}
			if err := WriteMarkdownHandout(&md, sc, lang); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = &sh
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s (%s): bash -n: %v\n%s", sc.Name, lang, err, out)
			}
			for _, bad := range []string{" -k ", "--insecure"} {
				if strings.Contains(sh.String(), bad) || strings.Contains(md.String(), bad) {
					t.Errorf("%s (%s): the handout uses %q", sc.Name, lang, bad)
				}
			}
			if !strings.Contains(md.String(), "## 1. ") {
				t.Errorf("%s (%s): no numbered steps in the Markdown", sc.Name, lang)
			}
		}
	}
}
