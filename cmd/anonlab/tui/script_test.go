package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
)

// fakeEngine is a Controller whose events the test sends and whose orders
// it records. Its channel is unbuffered, so that an emit returns only once
// the walkthrough has taken the event: after emit(e...) every e
// has been through Update.
type fakeEngine struct {
	events chan steps.Event
	calls  chan string
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{events: make(chan steps.Event), calls: make(chan string, 16)}
}

func (f *fakeEngine) Events() <-chan steps.Event { return f.events }
func (f *fakeEngine) Next()                      { f.calls <- "next" }
func (f *fakeEngine) All()                       { f.calls <- "all" }
func (f *fakeEngine) Rerun(i int)                { f.calls <- fmt.Sprintf("rerun %d", i) }
func (f *fakeEngine) Stop()                      { f.calls <- "stop" }
func (f *fakeEngine) Interrupt()                 { f.calls <- "interrupt" }

// sync is an event the walkthrough ignores; see fakeEngine.
type syncEvent struct{}

func (syncEvent) EventName() string { return "sync" }

func (f *fakeEngine) emit(t *testing.T, evs ...steps.Event) {
	t.Helper()
	for _, ev := range append(evs, syncEvent{}) {
		select {
		case f.events <- ev:
		case <-time.After(10 * time.Second):
			t.Fatalf("the walkthrough did not take %T %+v", ev, ev)
		}
	}
}

func (f *fakeEngine) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.calls:
		if got != want {
			t.Fatalf("the walkthrough ordered %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the walkthrough did not order %q", want)
	}
}

// scenarioStarted is the engine's own first event for testdata/article.yaml:
// the Stepper announces the scenario before anything runs, so a stub
// backend will do.
func scenarioStarted(t testing.TB) steps.ScenarioStarted {
	t.Helper()
	sc, err := steps.LoadFile("testdata/article.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := steps.Start(ctx, sc, stubBackend{})
	first := <-s.Events()
	cancel()
	for range s.Events() {
	}
	return first.(steps.ScenarioStarted)
}

type stubBackend struct{}

func (stubBackend) Name() string                  { return "local" }
func (stubBackend) Create(context.Context) error  { return nil }
func (stubBackend) Destroy(context.Context) error { return nil }
func (stubBackend) Info() cluster.Info            { return cluster.Info{} }
func (stubBackend) AdminConfig() *rest.Config     { return &rest.Config{} }

// What the local backend answers, with fixed paths and times.
const (
	url  = "https://127.0.0.1:6443"
	ca   = "/tmp/anonlab-local/ca.crt"
	kcfg = "/tmp/anonlab-local/admin.kubeconfig"
)

func started(i int, id, title string) steps.StepStarted {
	return steps.StepStarted{Step: id, Index: i, Title: title}
}

func passed(i int, id string, ms int64) steps.StepFinished {
	return steps.StepFinished{Step: id, Index: i, Status: steps.Passed, DurationMS: ms}
}

func createCluster() []steps.Event {
	return []steps.Event{
		started(0, "create-cluster", "Create a cluster"),
		steps.Progress{Step: "create-cluster", Phase: "create", Detail: "starting etcd and kube-apiserver on 127.0.0.1"},
		steps.Progress{Step: "create-cluster", Phase: "wait", Detail: "polling " + url + "/readyz as kubernetes-admin: GET /readyz 500", ElapsedMS: 2070},
		steps.Progress{Step: "create-cluster", Phase: "create", Detail: "kube-apiserver v1.37.2 serves at " + url, ElapsedMS: 3711, Done: true},
		steps.Log{Step: "create-cluster", Text: "kube-apiserver v1.37.2 serves at " + url + " (local backend)"},
		steps.ClusterState{Step: "create-cluster", Backend: "local", KubernetesVersion: "v1.37.2", URL: url, AnonymousAuth: "on", Running: true},
		passed(0, "create-cluster", 3711),
	}
}

func saToken() []steps.Event {
	return []steps.Event{
		started(1, "sa-token", "Get a ServiceAccount token"),
		steps.Command{Step: "sa-token", Text: "SA_TOKEN=$(kubectl --kubeconfig " + kcfg + " create token default --namespace default)"},
		steps.Log{Step: "sa-token", Text: "got a token for system:serviceaccount:default:default, valid until 15:08:11 UTC; shown as $SA_TOKEN"},
		passed(1, "sa-token", 9),
	}
}

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

func request(i int, id, title, identity, path string, code int, body string, checks ...steps.Check) []steps.Event {
	cmd := "curl --cacert " + ca + " " + url + path
	if identity != "anonymous" {
		cmd = "curl --cacert " + ca + ` -H "Authorization: Bearer $SA_TOKEN" ` + url + path
	}
	ex := steps.HTTPExchange{Step: id, Identity: identity, Method: "GET", Path: path, URL: url + path, Command: cmd,
		Status: code, StatusText: httpText[code], Body: body, DurationMS: 3}
	if strings.Contains(body, `"kind": "Status"`) {
		ex.Reason = httpText[code]
		_, msg, _ := strings.Cut(body, `"message": "`)
		msg, _, _ = strings.Cut(msg, "\",\n")
		ex.Message = strings.ReplaceAll(msg, `\"`, `"`)
	}
	evs := []steps.Event{started(i, id, title), ex}
	fin := passed(i, id, 3)
	for _, c := range checks {
		c.Step = id
		evs = append(evs, c)
		if !c.OK {
			fin.Status = steps.Failed
		}
	}
	return append(evs, fin)
}

var httpText = map[int]string{200: "OK", 401: "Unauthorized", 403: "Forbidden"}

func ok(name, value string) steps.Check {
	return steps.Check{Name: name, Want: value, Got: value, OK: true}
}

const apiVersions = `{
  "kind": "APIVersions",
  "versions": [
    "v1"
  ],
  "serverAddressByClientCIDRs": [
    {
      "clientCIDR": "0.0.0.0/0",
      "serverAddress": "127.0.0.1:6443"
    }
  ]
}
`

const forbiddenAPI = `forbidden: User "system:anonymous" cannot get path "/api"`
const forbiddenNamespaces = `namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope`

func apiWithToken() []steps.Event {
	return request(2, "api-with-token", "GET /api with the token → 200", "system:serviceaccount:default:default", "/api", 200, apiVersions,
		ok("status", "200"), ok("jsonpath {.kind}", "APIVersions"))
}

func anonymousAPI() []steps.Event {
	return request(3, "anonymous-api", "GET /api anonymously → 403", "anonymous", "/api", 403, status(403, "Forbidden", forbiddenAPI),
		ok("status", "403"), ok("reason", "Forbidden"), ok("message", forbiddenAPI))
}

func anonymousNamespaces() []steps.Event {
	return request(4, "anonymous-namespaces", "List namespaces anonymously → 403", "anonymous", "/api/v1/namespaces", 403,
		status(403, "Forbidden", forbiddenNamespaces), ok("status", "403"), ok("reason", "Forbidden"), ok("message", forbiddenNamespaces))
}

func grant() []steps.Event {
	return []steps.Event{
		started(5, "grant-anonymous", "Let system:anonymous list namespaces"),
		steps.Command{Step: "grant-anonymous", Text: "kubectl --kubeconfig " + kcfg + " apply --server-side -f my-cluster-role.yaml -f my-cluster-role-binding.yaml"},
		steps.Log{Step: "grant-anonymous", Text: "applied ClusterRole my-cluster-role"},
		steps.Log{Step: "grant-anonymous", Text: "applied ClusterRoleBinding my-cluster-role-binding"},
		passed(5, "grant-anonymous", 26),
	}
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

func anonymousNamespacesGranted() []steps.Event {
	return request(6, "anonymous-namespaces-granted", "List namespaces anonymously → 200", "anonymous", "/api/v1/namespaces", 200, namespaceList(),
		ok("status", "200"), ok("jsonpath {.items[*].metadata.name}", "default kube-node-lease kube-public kube-system"))
}

func disableAnonymousStart() []steps.Event {
	return []steps.Event{
		started(7, "disable-anonymous", "Restart kube-apiserver with --anonymous-auth=false"),
		steps.Progress{Step: "disable-anonymous", Phase: "wait", Detail: "polling " + url + "/readyz as kubernetes-admin: Get \"" + url + "/readyz\": dial tcp 127.0.0.1:6443: connect: connection refused", ElapsedMS: 74},
		steps.Progress{Step: "disable-anonymous", Phase: "wait", Detail: "polling " + url + "/readyz as kubernetes-admin: GET /readyz 500", ElapsedMS: 2179},
	}
}

func disableAnonymous() []steps.Event {
	return append(disableAnonymousStart(),
		steps.ClusterState{Step: "disable-anonymous", Backend: "local", KubernetesVersion: "v1.37.2", URL: url, AnonymousAuth: "off", Running: true},
		passed(7, "disable-anonymous", 3921))
}

func anonymousUnauthorized() []steps.Event {
	return request(8, "anonymous-api-unauthorized", "GET /api anonymously → 401", "anonymous", "/api", 401,
		"{\n  \"kind\": \"Status\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {},\n  \"status\": \"Failure\",\n  \"message\": \"Unauthorized\",\n  \"reason\": \"Unauthorized\",\n  \"code\": 401\n}\n",
		ok("status", "401"), ok("reason", "Unauthorized"), ok("message", "Unauthorized"))
}

func cleanup() []steps.Event {
	return []steps.Event{
		steps.StepStarted{Step: "revoke-grant", Index: 0, Title: "Remove the anonymous grant", Cleanup: true},
		steps.Command{Step: "revoke-grant", Text: "kubectl --kubeconfig " + kcfg + " delete --ignore-not-found -f my-cluster-role-binding.yaml -f my-cluster-role.yaml"},
		steps.Log{Step: "revoke-grant", Text: "deleted ClusterRoleBinding my-cluster-role-binding"},
		steps.StepFinished{Step: "revoke-grant", Index: 0, Cleanup: true, Status: steps.Passed, DurationMS: 19},
		steps.StepStarted{Step: "restore-flags", Index: 1, Title: "Put kube-apiserver's flags back", Cleanup: true},
		steps.StepFinished{Step: "restore-flags", Index: 1, Cleanup: true, Status: steps.Skipped, Error: "the cluster is deleted next: nothing to restore"},
		steps.StepStarted{Step: "destroy-cluster", Index: 2, Title: "Delete the cluster", Cleanup: true},
		steps.ClusterState{Step: "destroy-cluster", Backend: "local"},
		steps.StepFinished{Step: "destroy-cluster", Index: 2, Cleanup: true, Status: steps.Passed, DurationMS: 112},
	}
}

func run(parts ...[]steps.Event) []steps.Event {
	var all []steps.Event
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}
