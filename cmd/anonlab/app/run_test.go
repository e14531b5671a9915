package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb}, args)
	return code, out.String(), errb.String()
}

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real etcd and kube-apiserver: run without -short (make test does)")
	}
}

// answer is what an http event of `anonlab run --output json` says of one
// request.
type answer struct {
	Identity string `json:"identity"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Status   int    `json:"status"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
	Body     string `json:"body"`
}

// checkArticle checks a run of anonymous-auth against the article, on
// every version it holds for: token 200 → anonymous 403 → 403 → grant →
// 200 with the four namespaces → 401, then the kubelet's probes refused
// too.
func checkArticle(t *testing.T, got []answer) {
	t.Helper()
	want := []struct {
		identity, path string
		status         int
		reason, msg    string
	}{
		{"system:serviceaccount:default:default", "/api", 200, "", ""},
		{"anonymous", "/api", 403, "Forbidden", `forbidden: User "system:anonymous" cannot get path "/api"`},
		{"anonymous", "/api/v1/namespaces", 403, "Forbidden", `namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope`},
		{"anonymous", "/api/v1/namespaces", 200, "", ""},
		{"anonymous", "/api", 401, "Unauthorized", "Unauthorized"},
		// Beyond the article: the kubelet's probes fail too.
		{"anonymous", "/readyz", 401, "Unauthorized", "Unauthorized"},
		{"anonymous", "/livez", 401, "Unauthorized", "Unauthorized"},
		{"anonymous", "/version", 401, "Unauthorized", "Unauthorized"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d http events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Identity != w.identity || g.Method != "GET" || g.Path != w.path || g.Status != w.status || g.Reason != w.reason || g.Message != w.msg {
			t.Errorf("http event %d = %s %s %s → %d %q %q; want %s GET %s → %d %q %q",
				i, g.Identity, g.Method, g.Path, g.Status, g.Reason, g.Message, w.identity, w.path, w.status, w.reason, w.msg)
		}
	}
	var list struct {
		Items []struct{ Metadata struct{ Name string } }
	}
	if err := json.Unmarshal([]byte(got[3].Body), &list); err != nil {
		t.Fatalf("namespace list body: %v", err)
	}
	var names []string
	for _, it := range list.Items {
		names = append(names, it.Metadata.Name)
	}
	if got := strings.Join(names, " "); got != "default kube-node-lease kube-public kube-system" {
		t.Errorf("anonymous namespace list = %q", got)
	}
}

// TestRunArticleLocal is the "must show": the article through
// `anonlab run --output json` on a real kube-apiserver.
func TestRunArticleLocal(t *testing.T) {
	needCluster(t)
	code, out, errOut := run(t, "run", "anonymous-auth", "--backend", "local", "--output", "json", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	type event struct {
		Event   string `json:"event"`
		Step    string `json:"step"`
		Command string `json:"command"`
		answer
		Audit *struct {
			User     string   `json:"user"`
			Groups   []string `json:"groups"`
			Decision string   `json:"decision"`
			Reason   string   `json:"reason"`
			Why      string   `json:"why"`
		} `json:"audit"`
		Passed  *int `json:"passed"`
		Failed  *int `json:"failed"`
		Skipped *int `json:"skipped"`
	}
	var https []event
	var last event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		if e.Event == "http" {
			https = append(https, e)
		}
		last = e
	}
	if last.Event != "summary" || last.Passed == nil || last.Failed == nil || last.Skipped == nil || *last.Failed != 0 {
		t.Errorf("last line %+v, want a summary with passed, failed 0, skipped", last)
	}
	answers := make([]answer, len(https))
	for i := range https {
		answers[i] = https[i].answer
	}
	checkArticle(t, answers)
	// Why, from kube-apiserver's audit log: authorization refused an
	// authenticated system:anonymous (403), RBAC allowed it through the
	// article's binding (200), authentication refused the request (401).
	for i, e := range https {
		if e.Audit == nil {
			t.Fatalf("http event %d (%s %d) has no audit object", i, e.Path, e.Status)
		}
	}
	if a := https[1].Audit; a.User != "system:anonymous" || !slices.Equal(a.Groups, []string{"system:unauthenticated"}) || a.Decision != "forbid" {
		t.Errorf("audit of the 403: %+v", a)
	}
	if a := https[3].Audit; a.Decision != "allow" || !strings.Contains(a.Reason, `ClusterRoleBinding "my-cluster-role-binding"`) {
		t.Errorf("audit of the 200: %+v", a)
	}
	if a := https[4].Audit; a.User != "" || a.Why != "not authenticated (401): anonymous requests are off" {
		t.Errorf("audit of the 401: %+v", a)
	}

	for _, e := range https {
		if strings.Contains(e.Command, " -k ") || strings.Contains(e.Command, "--insecure") {
			t.Errorf("command %q skips TLS verification", e.Command)
		}
	}
	if strings.Contains(out, "eyJ") {
		t.Errorf("a token (JWT) appears in the output")
	}

	// Nothing of the run is left: its private directory (where the log
	// says its CA file is) and any process started from it.
	dir := caDir.FindStringSubmatch(out)
	if dir == nil {
		t.Fatalf("no CA file named in the output:\n%s", out)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("the run's directory %s is still there (stat: %v)", dir[1], err)
	}
	if pids := processesMentioning(t, dir[1]); len(pids) > 0 {
		t.Errorf("processes of the run still running: %v", pids)
	}
}

// caDir finds the run's private directory in the log line that names its
// CA file.
var caDir = regexp.MustCompile(`CA file: (\S+)/ca\.crt`)

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, f := range cmdlines {
		data, err := os.ReadFile(f)
		if err == nil && bytes.Contains(data, []byte(s)) {
			pids = append(pids, filepath.Base(filepath.Dir(f)))
		}
	}
	return pids
}

func TestRunWrongExpectation(t *testing.T) {
	needCluster(t)
	junit := filepath.Join(t.TempDir(), "report.xml")
	code, out, errOut := run(t, "run", "--file", "testdata/wrong-expectation.yaml", "--backend", "local", "--lang", "en", "--report", junit)
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suite []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil || len(suites.Suite) != 1 || suites.Suite[0].Tests != 3 || suites.Suite[0].Failures != 1 {
		t.Errorf("--report %s: %+v (%v), want one suite of 3 testcases with 1 failure\n%s", junit, suites, err, data)
	}
	for _, want := range []string{"✗ status", "want: 200", "got:  403", "1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunBadScenarios(t *testing.T) {
	files, err := filepath.Glob("../../../steps/testdata/bad/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("want the ten malformed scenarios, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := run(t, "run", "--file", f, "--backend", "local")
			if code != ExitBadUsage {
				t.Errorf("exit %d, want 2", code)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(f) + `:\d+: `).MatchString(errOut) {
				t.Errorf("stderr %q does not name %s:LINE", errOut, f)
			}
			if out != "" {
				t.Errorf("something ran: stdout %q", out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"no scenario", []string{"run"}},
		{"both", []string{"run", "anonymous-auth", "--file", "x.yaml"}},
		{"unknown scenario", []string{"run", "no-such-scenario"}},
		{"bad output", []string{"run", "anonymous-auth", "--output", "xml"}},
		{"bad lang", []string{"run", "anonymous-auth", "--lang", "fr"}},
		{"bad flag", []string{"run", "--no-such-flag"}},
		{"unknown backend", []string{"run", "anonymous-auth", "--backend", "mars"}},
		{"unknown command", []string{"frobnicate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != ExitBadUsage || errOut == "" {
				t.Errorf("exit %d, stderr %q; want 2 and a message (stdout %q)", code, errOut, out)
			}
		})
	}
}

func TestList(t *testing.T) {
	code, out, _ := run(t, "list", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !regexp.MustCompile(`(?m)^anonymous-auth\tDisable anonymous requests`).MatchString(out) {
		t.Errorf("list output %q lacks 'anonymous-auth<TAB>title'", out)
	}
}
