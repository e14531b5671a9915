package steps

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"
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
		client   *http.Client
		identity string
		command  string
		bearer   string
		err      error
	)
	curl := fmt.Sprintf("curl --cacert %s", shellQuote(info.CAFile))
	if q.Method == http.MethodHead {
		curl += " --head"
	}
	switch {
	case q.Token != "":
		t := sc.run.tokens[q.Token]
		if step, ok := sc.run.skippedTokens[q.Token]; ok && t.value == "" {
			return Skip(fmt.Sprintf("no token %q: step %q, which was to get it, was skipped", q.Token, step))
		}
		if t.value == "" {
			return fmt.Errorf("token %q was not obtained (its step did not run)", q.Token)
		}
		identity, bearer = t.identity, t.value
		command = fmt.Sprintf(`%s -H "Authorization: Bearer $%s" %s`, curl, t.variable, info.URL+q.Path)
		client, err = caClient(info.CAData)
	case q.As == "admin":
		identity = info.AdminName
		command = fmt.Sprintf("%s get --raw %s", sc.kubectl(), shellQuote(q.Path))
		client, err = rest.HTTPClientFor(sc.Backend.AdminConfig())
	default:
		identity = "anonymous"
		command = fmt.Sprintf("%s %s", curl, info.URL+q.Path)
		client, err = caClient(info.CAData)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, q.Method, info.URL+q.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
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
	sc.run.emit(HTTPExchange{
		Step: sc.Step.ID, Identity: identity, Method: q.Method, Path: q.Path, URL: info.URL + q.Path,
		Command: command, Status: resp.StatusCode, StatusText: http.StatusText(resp.StatusCode),
		Reason: r.Reason, Message: r.Message, Body: pretty(body), DurationMS: ms(time.Since(start)),
	})
	return nil
}

// caClient trusts the cluster's CA and nothing else, and sends no
// credentials: never the article's curl -k.
func caClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the cluster's CA is not a PEM certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

func pretty(body []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, body, "", "  ") == nil {
		return buf.String()
	}
	return string(body)
}
