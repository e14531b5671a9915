package steps

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster"
)

// TestRequestClients sends requests as each identity through Run to a TLS
// server that records what it received: the anonymous client carries no
// credential, the token client only its token, the admin only its client
// certificate; the server name of the admin config is kept (the server's
// certificate does not name the host the URL does); connections are
// reused within the run and closed when it ends.
func TestRequestClients(t *testing.T) {
	type seen struct{ auth, cert string }
	var (
		mu       sync.Mutex
		requests []seen
		opened   = map[net.Conn]bool{} // true while open
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{auth: r.Header.Get("Authorization")}
		if len(r.TLS.PeerCertificates) > 0 {
			s.cert = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		mu.Lock()
		requests = append(requests, s)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if s.cert == "" && s.auth != "Bearer s3cret" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","reason":"Forbidden","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\""}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"APIVersions"}`))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch st {
		case http.StateNew:
			opened[c] = true
		case http.StateClosed, http.StateHijacked:
			opened[c] = false
		}
	}
	srv.StartTLS()
	defer srv.Close()

	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	certPEM, keyPEM := clientCert(t, "kubernetes-admin")
	// The test certificate names example.com and 127.0.0.1, not localhost:
	// only a client that keeps tls-server-name verifies it.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	b := &fakeBackend{
		info: cluster.Info{Backend: "fake", URL: url, CAFile: "/ca.crt", CAData: ca, AdminName: "kubernetes-admin"},
		cfg: &rest.Config{Host: url, TLSClientConfig: rest.TLSClientConfig{
			ServerName: "example.com", CAData: ca, CertData: certPEM, KeyData: keyPEM,
		}},
	}
	request := func(id string, q requestStep) *Step {
		q.Method, q.Path = http.MethodGet, "/api"
		return &Step{ID: id, Kind: "request", Action: &q}
	}
	sc := &Scenario{Name: "clients", Steps: []*Step{
		request("anonymous-1", requestStep{As: "anonymous"}),
		request("anonymous-2", requestStep{As: "anonymous"}),
		request("admin", requestStep{As: "admin"}),
		request("token-1", requestStep{Token: "sa"}),
		request("token-2", requestStep{Token: "sa"}),
	}}
	var exchanges []HTTPExchange
	r := &runner{
		opts: options{lang: "en", cleanupIn: time.Minute}, scenario: sc, backend: b,
		sink: SinkFunc(func(e Event) {
			if x, ok := e.(HTTPExchange); ok {
				exchanges = append(exchanges, x)
			}
		}),
		tokens:  map[string]token{"sa": {value: "s3cret", identity: "system:serviceaccount:default:default", variable: "SA"}},
		results: map[stepKey]string{}, skippedTokens: map[string]string{},
	}
	if sum := r.run(context.Background()); sum.Failed != 0 || sum.Passed != len(sc.Steps) {
		t.Fatalf("summary %+v; exchanges %+v", sum, exchanges)
	}

	want := []HTTPExchange{
		{Step: "anonymous-1", Identity: "anonymous", Status: 403, Reason: "Forbidden", Command: `curl --cacert "$CACERT" "$APISERVER/api"`},
		{Step: "anonymous-2", Identity: "anonymous", Status: 403, Reason: "Forbidden", Command: `curl --cacert "$CACERT" "$APISERVER/api"`},
		{Step: "admin", Identity: "kubernetes-admin", Status: 200, Command: "kubectl get --raw /api"},
		{Step: "token-1", Identity: "system:serviceaccount:default:default", Status: 200, Command: `curl --cacert "$CACERT" -H "Authorization: Bearer $SA" "$APISERVER/api"`},
		{Step: "token-2", Identity: "system:serviceaccount:default:default", Status: 200, Command: `curl --cacert "$CACERT" -H "Authorization: Bearer $SA" "$APISERVER/api"`},
	}
	if len(exchanges) != len(want) {
		t.Fatalf("%d exchanges, want %d: %+v", len(exchanges), len(want), exchanges)
	}
	for i, w := range want {
		x := exchanges[i]
		if x.Step != w.Step || x.Identity != w.Identity || x.Status != w.Status || x.Reason != w.Reason || x.Command != w.Command ||
			x.URL != url+"/api" || x.Method != http.MethodGet || x.StatusText != http.StatusText(w.Status) {
			t.Errorf("exchange %d = %+v\nwant %+v", i, x, w)
		}
	}
	mu.Lock()
	got := append([]seen(nil), requests...)
	mu.Unlock()
	wantSeen := []seen{{}, {}, {cert: "kubernetes-admin"}, {auth: "Bearer s3cret"}, {auth: "Bearer s3cret"}}
	if len(got) != len(wantSeen) {
		t.Fatalf("the server saw %+v, want %+v", got, wantSeen)
	}
	for i := range wantSeen {
		if got[i] != wantSeen[i] {
			t.Errorf("request %d carried %+v, want %+v", i, got[i], wantSeen[i])
		}
	}

	// The server notices a close a moment after the client made it.
	var open, total int
	_ = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		open, total = 0, len(opened)
		for _, o := range opened {
			if o {
				open++
			}
		}
		return open == 0, nil
	})
	if open != 0 {
		t.Errorf("%d of %d connections still open after the run ended", open, total)
	}
	if total > 3 || total == 0 {
		t.Errorf("%d connections for %d requests by 3 identities: want at most one per identity", total, len(got))
	}
}

type fakeBackend struct {
	info cluster.Info
	cfg  *rest.Config
}

func (f *fakeBackend) Name() string                  { return "fake" }
func (f *fakeBackend) Create(context.Context) error  { return nil }
func (f *fakeBackend) Destroy(context.Context) error { return nil }
func (f *fakeBackend) Info() cluster.Info            { return f.info }
func (f *fakeBackend) AdminConfig() *rest.Config     { return rest.CopyConfig(f.cfg) }

// clientCert is a self-signed client certificate and its key, PEM encoded.
func clientCert(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
