package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http/httptest"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// pki is the client side of the fake's TLS: a CA the server trusts for
// client certificates, and the admin's certificate from it. The serving
// certificate is httptest's own.
type pki struct {
	clientCA            *x509.Certificate
	adminCert, adminKey []byte
}

func newPKI() (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the client CA's key: %w", err)
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "clustertest-client-ca"}, caKey)
	if err != nil {
		return nil, fmt.Errorf("create the client CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the admin's key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: AdminName, Organization: []string{"system:masters"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create the admin's certificate: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, fmt.Errorf("encode the admin's key: %w", err)
	}
	return &pki{clientCA: ca, adminCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), adminKey: keyPEM}, nil
}

// serverTLS asks for a client certificate without requiring one, as
// kube-apiserver does: anonymous requests and bearer tokens come without.
func (p *pki) serverTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.clientCA)
	return &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
}

// servingCA is the PEM of httptest's serving certificate, which is its own
// CA: clients that trust it verify the server.
func servingCA(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}
