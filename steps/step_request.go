package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/audit"
)

// requestStep sends one HTTP request to the apiserver as an identity:
// anonymous (no credentials), admin, or a token saved by an earlier step.
// TLS is always verified against the cluster's CA.
//
//	request: {as: anonymous, path: /api}
//	request: {token: sa-token, path: /api}
type requestStep struct {
	As     string `yaml:"as"`
	Token  string `yaml:"token"`
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
}

func (requestStep) responds() {}

var identities = []string{"anonymous", "admin"}

func (q *requestStep) Validate(v *Validator) error {
	switch {
	case q.As == "" && q.Token == "":
		return v.Errorf("as", "required: anonymous or admin (or token: NAME)")
	case q.As != "" && q.Token != "":
		return v.Errorf("token", "give as or token, not both")
	case q.As != "" && !slices.Contains(identities, q.As):
		return v.Errorf("as", "%q: want anonymous or admin", q.As)
	case q.Token != "" && !v.TokenDefined(q.Token):
		return v.Errorf("token", "%q is not saved by an earlier serviceAccountToken step", q.Token)
	}
	if q.Method == "" {
		q.Method = http.MethodGet
	}
	q.Method = strings.ToUpper(q.Method)
	if !slices.Contains([]string{http.MethodGet, http.MethodHead}, q.Method) {
		return v.Errorf("method", "%q: the lab only reads (GET, HEAD)", q.Method)
	}
	if !strings.HasPrefix(q.Path, "/") {
		return v.Errorf("path", "required, starting with /: e.g. /api")
	}
	return nil
}

func (q *requestStep) Run(ctx context.Context, sc *StepContext) error {
	info := sc.Backend.Info()
	var (
		identity string
		config   func() *rest.Config
	)
	// The key names the cluster too: a cluster created again in the run
	// has another CA.
	key := clientKey{url: info.URL, ca: string(info.CAData)}
	switch {
	case q.Token != "":
		t := sc.run.tokens[q.Token]
		if step, ok := sc.run.skippedTokens[q.Token]; ok && t.value == "" {
			return Skip(fmt.Sprintf("no token %q: step %q, which was to get it, was skipped", q.Token, step))
		}
		if t.value == "" && t.step != nil {
			if err := t.step.Run(ctx, sc); err != nil {
				return err
			}
			t = sc.run.tokens[q.Token]
		}
		if t.value == "" {
			return fmt.Errorf("token %q was not obtained (its step did not run)", q.Token)
		}
		identity, key.credential = t.identity, "token:"+t.value
		config = func() *rest.Config {
			c := rest.AnonymousClientConfig(sc.Backend.AdminConfig())
			c.BearerToken = t.value
			return c
		}
	case q.As == "admin":
		identity, key.credential = info.AdminName, "admin"
		config = sc.Backend.AdminConfig
	default:
		identity, key.credential = "anonymous", "anonymous"
		config = func() *rest.Config { return rest.AnonymousClientConfig(sc.Backend.AdminConfig()) }
	}
	client, err := sc.run.clients.get(key, config)
	if err != nil {
		return fmt.Errorf("make the HTTP client for %s: %w", identity, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, q.Method, info.URL+q.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	sc.run.requests++
	ua := audit.UserAgent(sc.run.entry().ID, fmt.Sprintf("%s.%d", sc.Step.ID, sc.run.requests))
	req.Header.Set("User-Agent", ua)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s as %s: %w", q.Method, q.Path, identity, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the response to %s %s: %w", q.Method, q.Path, err)
	}
	r := &Response{Status: resp.StatusCode, Body: body}
	var status struct{ Kind, Reason, Message string }
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" {
		r.Reason, r.Message = status.Reason, status.Message
	}
	sc.response = r
	took := time.Since(start)
	sc.run.emit(HTTPExchange{
		Step: sc.Step.ID, Identity: identity, Method: q.Method, Path: q.Path, URL: info.URL + q.Path,
		Command: q.shellCommand(), Status: resp.StatusCode, StatusText: http.StatusText(resp.StatusCode),
		Reason: r.Reason, Message: r.Message, Body: pretty(body), DurationMS: ms(took),
		Audit: sc.auditRecord(ctx, ua, identity != "anonymous"),
	})
	return nil
}

// auditRecord is the audit log's record of the request sent with user
// agent ua, or nil when the backend has no audit log the lab reads. In
// blocking mode kube-apiserver writes it before it answers, so it is there
// at once; the bound only keeps a missing one from holding the run.
func (sc *StepContext) auditRecord(ctx context.Context, ua string, sentCredentials bool) *AuditRecord {
	t := sc.run.audit
	if t == nil {
		return nil
	}
	o, err := audit.Find(ctx, t.C(), audit.SentWith(ua), 2*time.Second, nil)
	if err != nil {
		sc.Log("no audit record of this request: %v", err)
		return nil
	}
	return &AuditRecord{User: o.User, Groups: o.Groups, Decision: o.Decision, Reason: o.AuthzReason,
		Why: audit.ExplainIn(o, sc.Lang(), audit.SentCredentials(sentCredentials))}
}

// clientCache holds a run's HTTP clients, one per identity and cluster,
// built by client-go from the admin's config (so TLS is verified against
// the cluster's CA, with its server name): anonymous and token clients are
// rest.AnonymousClientConfig copies, which carry no admin credential. Their
// kept-alive connections are closed when the run ends.
type clientCache struct {
	byKey map[clientKey]*http.Client
}

type clientKey struct {
	credential string // "anonymous", "admin" or "token:" and the token
	url, ca    string
}

func (c *clientCache) get(key clientKey, config func() *rest.Config) (*http.Client, error) {
	if hc, ok := c.byKey[key]; ok {
		return hc, nil
	}
	hc, err := rest.HTTPClientFor(config())
	if err != nil {
		return nil, err
	}
	if c.byKey == nil {
		c.byKey = map[clientKey]*http.Client{}
	}
	c.byKey[key] = hc
	return hc, nil
}

// close closes the idle connections of every client; a request in flight
// keeps its own until it ends. client-go wraps the http.Transport in round
// trippers that do not pass CloseIdleConnections on: utilnet unwraps them.
func (c *clientCache) close() {
	for _, hc := range c.byKey {
		utilnet.CloseIdleConnectionsFor(hc.Transport)
	}
	c.byKey = nil
}

func pretty(body []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, body, "", "  ") == nil {
		return buf.String()
	}
	return string(body)
}
