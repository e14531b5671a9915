package kind_test

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/anonlab/anonlab/cmd/anonlab/app"
	"github.com/anonlab/anonlab/steps/cluster/kind"
)

// TestArticleOnKind is the issue's "must show": `anonlab run
// anonymous-auth --backend kind --output json` on a real kind cluster gives
// the article's answers, the flag is changed by editing the static-Pod
// manifest, and nothing of the lab's cluster remains afterwards.
func TestArticleOnKind(t *testing.T) {
	rt, image := kind.RequireKind(t)
	var out, errOut strings.Builder
	code := app.Run(app.IOStreams{In: strings.NewReader(""), Out: &out, Err: &errOut},
		[]string{"run", "anonymous-auth", "--backend", "kind", "--node-image", image, "--output", "json", "--lang", "en"})
	if code != app.ExitOK {
		t.Fatalf("exit %d, want 0\nstderr:\n%s\nstdout:\n%s", code, errOut.String(), out.String())
	}
	type event struct {
		Event    string `json:"event"`
		Step     string `json:"step"`
		Identity string `json:"identity"`
		Path     string `json:"path"`
		Status   int    `json:"status"`
		Reason   string `json:"reason"`
		Message  string `json:"message"`
		Body     string `json:"body"`
		Command  string `json:"command"`
		Text     string `json:"text"`
		Audit    *struct {
			User     string `json:"user"`
			Decision string `json:"decision"`
		} `json:"audit"`
		Phase  string `json:"phase"`
		Detail string `json:"detail"`
		Failed *int   `json:"failed"`
	}
	var got []string
	var edit, cacert, name string
	var auditLogs []string // the run's log lines about the audit log
	var last event
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		switch {
		case e.Event == "log":
			if m := regexp.MustCompile(`CA file: (\S+)/ca\.crt`).FindStringSubmatch(e.Text); m != nil {
				cacert = m[1]
			}
			if strings.Contains(e.Text, "audit") {
				auditLogs = append(auditLogs, e.Step+": "+e.Text)
			}
		case e.Event == "http":
			got = append(got, strings.Join([]string{e.Identity, e.Path, strings.TrimSpace(strings.Join([]string{strconv.Itoa(e.Status), e.Reason, e.Message}, " "))}, " "))
			// Why, from kube-apiserver's audit log read on the host.
			switch {
			case e.Audit == nil:
				t.Errorf("http event of step %s has no audit record; the run said of the audit log:\n%s", e.Step, strings.Join(auditLogs, "\n"))
			case e.Step == "anonymous-api" && (e.Audit.User != "system:anonymous" || e.Audit.Decision != "forbid"):
				t.Errorf("anonymous-api: audit %+v, want system:anonymous, forbid", *e.Audit)
			case e.Step == "anonymous-api-unauthorized" && e.Audit.User != "":
				t.Errorf("anonymous-api-unauthorized: audit %+v, want no user", *e.Audit)
			}
			if e.Step == "anonymous-namespaces-granted" {
				for _, ns := range []string{"default", "kube-node-lease", "kube-public", "kube-system"} {
					if !strings.Contains(e.Body, `"name": "`+ns+`"`) {
						t.Errorf("anonymous namespace list has no %s:\n%s", ns, e.Body)
					}
				}
			}
		case e.Event == "command" && e.Step == "disable-anonymous":
			edit = e.Command
		case e.Event == "progress" && e.Phase == "create":
			if m := createdRE.FindStringSubmatch(e.Detail); m != nil {
				name = m[1]
			}
		}
		last = e
	}
	want := []string{
		"system:serviceaccount:default:default /api 200",
		`anonymous /api 403 Forbidden forbidden: User "system:anonymous" cannot get path "/api"`,
		`anonymous /api/v1/namespaces 403 Forbidden namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope`,
		"anonymous /api/v1/namespaces 200",
		"anonymous /api 401 Unauthorized Unauthorized",
		// Beyond the article, as on local: the kubelet's probes fail too.
		"anonymous /readyz 401 Unauthorized Unauthorized",
		"anonymous /livez 401 Unauthorized Unauthorized",
		"anonymous /version 401 Unauthorized Unauthorized",
	}
	if !slices.Equal(got, want) {
		t.Errorf("http sequence:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last.Event != "summary" || last.Failed == nil || *last.Failed != 0 {
		t.Errorf("last line %+v, want a summary with failed 0", last)
	}
	// The flag was changed as the article does: in the static-Pod manifest,
	// inside the control-plane node.
	editRE := regexp.MustCompile(`^` + rt.Name + ` exec "\$NODE" sed -i .*--anonymous-auth=false.* "\$KUBE_APISERVER_MANIFEST"$`)
	if !editRE.MatchString(lastLine(edit)) {
		t.Errorf("the flag change was shown as %q, want a sed of the static-Pod manifest in the node", edit)
	}
	if name == "" {
		t.Fatal("no progress event names the kind cluster")
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Error("a token (JWT) appears in the output")
	}
	if _, err := os.Stat(cacert); cacert == "" || !os.IsNotExist(err) {
		t.Errorf("the run's private directory %q is still there (stat: %v)", cacert, err)
	}
	clusters, err := kindcluster.NewProvider().List()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(clusters, name) {
		t.Errorf("kind cluster %s remains after the run", name)
	}
	if left := kind.Containers(t, rt, name+"-"); len(left) > 0 {
		t.Errorf("containers of %s remain after the run: %q", name, left)
	}
}

// createdRE reads the cluster's name from the kind backend's last
// creation report.
var createdRE = regexp.MustCompile(`^kind cluster (anonlab-[0-9a-f]+): kube-apiserver `)

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
