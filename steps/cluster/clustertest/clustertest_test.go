package clustertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"

	"k8s.io/client-go/rest"
)

func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The fake's TLS is real: a client that does not trust Info().CAData is
// refused, one that does is served, and the admin's certificate
// authenticates.
func TestTLS(t *testing.T) {
	b := New()
	if err := b.Create(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Destroy(context.Background()) })
	info := b.Info()

	_, err := get(t, &http.Client{}, info.URL+"/api")
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("a client without the cluster's CA got %v, want an unknown-authority error", err)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(info.CAData) {
		t.Fatal("Info().CAData is not PEM")
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if code, err := get(t, anon, info.URL+"/api"); err != nil || code != http.StatusForbidden {
		t.Errorf("anonymous GET /api: %d %v, want 403", code, err)
	}

	admin, err := rest.HTTPClientFor(b.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, admin, info.URL+"/api/v1/namespaces"); err != nil || code != http.StatusOK {
		t.Errorf("admin GET /api/v1/namespaces: %d %v, want 200", code, err)
	}

	if err := b.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, anon, info.URL+"/api"); err == nil {
		t.Error("the server still answers after Destroy")
	}
}
