package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster/kube"
)

// Identity is what tells one control plane from every other: facts that
// are not reused, unlike a URL or a loopback port.
type Identity struct {
	// CAFingerprint is the SHA-256 of the cluster CA certificate (DER), hex.
	CAFingerprint string
	// KubeSystemUID is the UID of the kube-system namespace.
	KubeSystemUID string
}

// ReadServer reads the version kube-apiserver reports and the cluster's
// identity: what every backend learns once its cluster serves. When only
// the identity cannot be read, the version and what ReadIdentity read come
// with the error.
func ReadServer(ctx context.Context, cfg *rest.Config) (gitVersion string, id Identity, err error) {
	c, err := kube.New(cfg)
	if err != nil {
		return "", Identity{}, err
	}
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return "", Identity{}, fmt.Errorf("read the apiserver's version at %s: %w", cfg.Host, err)
	}
	if id, err = ReadIdentity(ctx, cfg); err != nil {
		return v.GitVersion, id, err
	}
	return v.GitVersion, id, nil
}

// ReadIdentity reads the identity of the cluster cfg reaches; when the
// kube-system namespace cannot be read, the error comes with the CA's
// fingerprint alone.
func ReadIdentity(ctx context.Context, cfg *rest.Config) (Identity, error) {
	fp, err := CAFingerprint(cfg.CAData)
	if err != nil {
		return Identity{}, err
	}
	c, err := kube.New(cfg)
	if err != nil {
		return Identity{}, err
	}
	ns, err := kube.Get[corev1.Namespace](ctx, c, kube.Namespaces, "", metav1.NamespaceSystem)
	if err != nil {
		return Identity{CAFingerprint: fp}, fmt.Errorf("read the kube-system namespace's UID: %w", err)
	}
	return Identity{CAFingerprint: fp, KubeSystemUID: string(ns.UID)}, nil
}

// CAFingerprint is the SHA-256 of the first certificate in a PEM bundle.
func CAFingerprint(caPEM []byte) (string, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("the cluster's CA is not a PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}
