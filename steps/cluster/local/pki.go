package local

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// pki is the set of credentials a kubeadm-like control plane needs.
type pki struct {
	caCert, caKey           []byte
	servingCert, servingKey []byte
	adminCert, adminKey     []byte
	saKey, saPub            []byte
}

const adminUser = "kubernetes-admin"

func newPKI() (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "anonlab-ca"}, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	p := &pki{}
	if p.caCert, err = certutil.EncodeCertificates(ca); err != nil {
		return nil, err
	}
	if p.caKey, err = keyutil.MarshalPrivateKeyToPEM(caKey); err != nil {
		return nil, err
	}
	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if p.servingCert, p.servingKey, err = sign(serving, ca, caKey); err != nil {
		return nil, fmt.Errorf("create serving certificate: %w", err)
	}
	admin := &x509.Certificate{
		Subject:     pkix.Name{CommonName: adminUser, Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if p.adminCert, p.adminKey, err = sign(admin, ca, caKey); err != nil {
		return nil, fmt.Errorf("create admin certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if p.saKey, err = keyutil.MarshalPrivateKeyToPEM(saKey); err != nil {
		return nil, err
	}
	if p.saPub, err = publicPEM(saKey.Public()); err != nil {
		return nil, err
	}
	return p, nil
}

func sign(tmpl, ca *x509.Certificate, caKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = certutil.EncodeCertificates(cert); err != nil {
		return nil, nil, err
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	return certPEM, keyPEM, err
}

func publicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// write puts the files into dir: certificates 0644, keys 0600.
func (p *pki) write(dir string) error {
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.crt", p.caCert, 0o644}, {"ca.key", p.caKey, 0o600},
		{"apiserver.crt", p.servingCert, 0o644}, {"apiserver.key", p.servingKey, 0o600},
		{"admin.crt", p.adminCert, 0o644}, {"admin.key", p.adminKey, 0o600},
		{"sa.key", p.saKey, 0o600}, {"sa.pub", p.saPub, 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}
