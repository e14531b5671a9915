package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/audit"
)

// recordedFile holds the audit events TestRealAPIServer -update recorded
// from a real kube-apiserver v1.37.2 with the lab's policy, as logged.
const recordedFile = "testdata/v1.37.2.audit.jsonl"

// recordRun is the run id in the User-Agent of every recorded request.
const recordRun = "record"

type recordedCase struct {
	// Want has the fields that do not change from one recording to the
	// next (not Time, AuditID).
	Want audit.Observation
	// Credentials is whether the request carried any (SentCredentials).
	Credentials bool
	Explain, Ja string
}

var (
	anonymous       = []string{"system:unauthenticated"}
	serviceAccounts = []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}
	admins          = []string{"system:masters", "system:authenticated"}
)

// cases are the requests TestRealAPIServer sends, by the step id in their
// User-Agent.
var cases = map[string]recordedCase{
	"anonymous-api": {
		Want: audit.Observation{
			User: "system:anonymous", Groups: anonymous, Verb: "get", Path: "/api", RequestURI: "/api",
			Code: 403, StatusReason: "Forbidden", Message: `forbidden: User "system:anonymous" cannot get path "/api"`,
			Decision: audit.Forbid,
		},
		Explain: "authenticated as system:anonymous (groups system:unauthenticated) → authorization: forbid",
		Ja:      "system:anonymous として認証 (グループ system:unauthenticated) → 認可: forbid",
	},
	"anonymous-namespaces": {
		Want: audit.Observation{
			User: "system:anonymous", Groups: anonymous, Verb: "list", Path: "/api/v1/namespaces", RequestURI: "/api/v1/namespaces",
			Resource: "namespaces", Code: 200,
			Decision: audit.Allow, AuthzReason: `RBAC: allowed by ClusterRoleBinding "my-cluster-role-binding" of ClusterRole "my-cluster-role" to User "system:anonymous"`,
		},
		Explain: `authenticated as system:anonymous (groups system:unauthenticated) → authorization: allow — RBAC: allowed by ClusterRoleBinding "my-cluster-role-binding" of ClusterRole "my-cluster-role" to User "system:anonymous"`,
		Ja:      `system:anonymous として認証 (グループ system:unauthenticated) → 認可: allow — RBAC: allowed by ClusterRoleBinding "my-cluster-role-binding" of ClusterRole "my-cluster-role" to User "system:anonymous"`,
	},
	"token-request": {
		Want: audit.Observation{
			User: "kubernetes-admin", Groups: admins, Verb: "create",
			Path: "/api/v1/namespaces/default/serviceaccounts/default/token", RequestURI: "/api/v1/namespaces/default/serviceaccounts/default/token",
			Resource: "serviceaccounts", Subresource: "token", Namespace: "default", Name: "default", Code: 201,
			Decision: audit.Allow,
		},
		Credentials: true,
		Explain:     "authenticated as kubernetes-admin (groups system:masters, system:authenticated) → authorization: allow",
		Ja:          "kubernetes-admin として認証 (グループ system:masters, system:authenticated) → 認可: allow",
	},
	"token-api": {
		Want: audit.Observation{
			User: "system:serviceaccount:default:default", Groups: serviceAccounts, Verb: "get", Path: "/api", RequestURI: "/api",
			Code: 200, Decision: audit.Allow,
			AuthzReason: `RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`,
		},
		Credentials: true,
		Explain:     `authenticated as system:serviceaccount:default:default (groups system:serviceaccounts, system:serviceaccounts:default, system:authenticated) → authorization: allow — RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`,
		Ja:          `system:serviceaccount:default:default として認証 (グループ system:serviceaccounts, system:serviceaccounts:default, system:authenticated) → 認可: allow — RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`,
	},
	"bad-token": {
		Want: audit.Observation{
			Verb: "get", Path: "/api", RequestURI: "/api",
			Code: 401, StatusReason: "Unauthorized", Message: "Unauthorized",
		},
		Credentials: true,
		Explain:     "not authenticated (401): the credentials were rejected",
		Ja:          "認証されていません (401): 認証情報が拒否されました",
	},
	"watch": {
		Want: audit.Observation{
			User: "kubernetes-admin", Groups: admins, Verb: "watch", Path: "/api/v1/namespaces",
			RequestURI: "/api/v1/namespaces?timeout=1s&timeoutSeconds=1&watch=true",
			Resource:   "namespaces", Code: 200, Decision: audit.Allow,
		},
		Credentials: true,
		Explain:     "authenticated as kubernetes-admin (groups system:masters, system:authenticated) → authorization: allow",
		Ja:          "kubernetes-admin として認証 (グループ system:masters, system:authenticated) → 認可: allow",
	},
	"anonymous-off": {
		Want: audit.Observation{
			Verb: "get", Path: "/api", RequestURI: "/api",
			Code: 401, StatusReason: "Unauthorized", Message: "Unauthorized",
		},
		Explain: "not authenticated (401): anonymous requests are off",
		Ja:      "認証されていません (401): 匿名リクエストは無効です",
	},
}

// checkCase compares o with the recorded case name, and its explanations.
func checkCase(t testing.TB, name string, o audit.Observation) {
	t.Helper()
	c, ok := cases[name]
	if !ok {
		t.Fatalf("no case %q", name)
	}
	if o.Time.IsZero() || o.AuditID == "" {
		t.Errorf("%s: no time or audit ID: %+v", name, o)
	}
	want := c.Want
	want.Time, want.AuditID = o.Time, o.AuditID
	want.UserAgent = audit.UserAgent(recordRun, name)
	if !reflect.DeepEqual(o, want) {
		t.Errorf("%s: observed\n%+v\nwant\n%+v", name, o, want)
	}
	sent := audit.SentCredentials(c.Credentials)
	if got := audit.Explain(o, sent); got != c.Explain {
		t.Errorf("%s: Explain = %q, want %q", name, got, c.Explain)
	}
	if got := audit.ExplainIn(o, "ja", sent); got != c.Ja {
		t.Errorf("%s: ExplainIn(ja) = %q, want %q", name, got, c.Ja)
	}
}

func recordedLines(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile(recordedFile)
	if err != nil {
		t.Fatalf("%v (record it: go test -run TestRealAPIServer -update)", err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// TestDecodeRecorded decodes the events a real kube-apiserver logged: one
// observation per request, whatever the number of its stages.
func TestDecodeRecorded(t *testing.T) {
	seen := map[string]int{}
	events := map[string]int{}
	for i, l := range recordedLines(t) {
		o, ok, err := audit.Decode(l)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		name := strings.TrimPrefix(userAgentOf(t, l), audit.UserAgent(recordRun, ""))
		events[name]++
		if !ok {
			continue
		}
		seen[name]++
		if _, known := cases[name]; known {
			checkCase(t, name, o)
		}
	}
	for name := range cases {
		if seen[name] != 1 {
			t.Errorf("%s: %d observations, want 1", name, seen[name])
		}
	}
	// The filter is exercised: the watch was logged at two stages.
	if events["watch"] != 2 {
		t.Errorf("the watch has %d events in %s, want 2 (ResponseStarted, ResponseComplete)", events["watch"], recordedFile)
	}
}

// userAgentOf reads an event's userAgent whatever its stage.
func userAgentOf(t testing.TB, line []byte) string {
	t.Helper()
	var ev struct {
		UserAgent string `json:"userAgent"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	return ev.UserAgent
}

func TestDecodeRefuses(t *testing.T) {
	cases := []struct {
		Name, Line string
	}{
		{"not JSON", `{"kind":`},
		{"another kind", `{"apiVersion":"v1","kind":"Pod"}`},
		{"another version", `{"apiVersion":"audit.k8s.io/v1beta1","kind":"Event","stage":"ResponseComplete"}`},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if o, ok, err := audit.Decode([]byte(tc.Line)); err == nil {
				t.Errorf("Decode(%s) = %+v, %v, nil; want an error", tc.Line, o, ok)
			}
		})
	}
}

func TestExplainOtherCases(t *testing.T) {
	cases := []struct {
		Name string
		O    audit.Observation
		Want string
	}{
		{"no user, not 401", audit.Observation{Code: 429}, "no user logged (429)"},
		{"401, credentials not known", audit.Observation{Code: 401}, "not authenticated (401): invalid credentials, or none while anonymous requests are off"},
		{"no decision", audit.Observation{User: "u", Code: 200}, "authenticated as u → no authorization decision logged (200)"},
		{"forbid with a reason", audit.Observation{User: "u", Code: 403, Decision: audit.Forbid, AuthzReason: "denied by webhook"}, "authenticated as u → authorization: forbid — denied by webhook"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if got := audit.Explain(tc.O); got != tc.Want {
				t.Errorf("Explain(%+v) = %q, want %q", tc.O, got, tc.Want)
			}
		})
	}
}
