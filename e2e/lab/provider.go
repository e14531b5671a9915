// Package lab connects anonlab to sigs.k8s.io/e2e-framework: a cluster
// provider over the lab's own backends, and a feature per scenario whose
// steps the lab's engine runs.
package lab

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
)

// Provider is an e2e-framework cluster provider over a steps/cluster
// backend, so that the suite gets the same control plane as `anonlab run`:
// kind through kind's Go library rather than a downloaded kind binary, or
// the local processes. Use it with envfuncs.CreateClusterWithOpts and
// envfuncs.DestroyCluster.
type Provider struct {
	backend string
	opts    backends.Options
	b       cluster.Backend
}

var _ support.E2EClusterProvider = (*Provider)(nil)

// NewProvider returns a provider for the backend called backend (local,
// kind, existing); nothing starts until Create.
func NewProvider(backend string) *Provider {
	return &Provider{backend: backend}
}

// WithNodeImage chooses the kind node image.
func WithNodeImage(image string) support.ClusterOpts {
	return func(c support.E2EClusterProvider) {
		if p, ok := c.(*Provider); ok {
			p.opts.NodeImage = image
		}
	}
}

// WithKubeconfig chooses the cluster for the existing backend: a
// kubeconfig file and context (e2e-framework's --kubeconfig and --context);
// empty values mean $KUBECONFIG or ~/.kube/config and its current context.
func WithKubeconfig(path, context string) support.ClusterOpts {
	return func(c support.E2EClusterProvider) {
		if p, ok := c.(*Provider); ok {
			p.opts.Kubeconfig, p.opts.Context = path, context
		}
	}
}

// Backend is the running backend; nil before Create.
func (p *Provider) Backend() cluster.Backend { return p.b }

// SetDefaults implements support.E2EClusterProvider.
func (p *Provider) SetDefaults() support.E2EClusterProvider {
	if p.opts.KubernetesVersion == "" {
		p.opts.KubernetesVersion = cluster.DefaultKubernetesVersion
	}
	return p
}

// WithName implements support.E2EClusterProvider. The backends name their
// clusters themselves; the name is only the key envfuncs stores the
// provider under in the context.
func (p *Provider) WithName(string) support.E2EClusterProvider { return p }

// WithVersion implements support.E2EClusterProvider: the Kubernetes release.
func (p *Provider) WithVersion(version string) support.E2EClusterProvider {
	p.opts.KubernetesVersion = version
	return p
}

// WithPath implements support.E2EClusterProvider: the directory that holds
// kube-apiserver and etcd for the local backend.
func (p *Provider) WithPath(path string) support.E2EClusterProvider {
	p.opts.BinariesDir = path
	return p
}

// WithOpts implements support.E2EClusterProvider.
func (p *Provider) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(p)
	}
	return p
}

// Create implements support.E2EClusterProvider: it creates the backend's
// control plane and returns the path of its admin kubeconfig.
func (p *Provider) Create(ctx context.Context, args ...string) (string, error) {
	if len(args) > 0 {
		return "", fmt.Errorf("create %s cluster: no arguments are taken (got %q); use the provider's options", p.backend, args)
	}
	b, err := backends.New(p.backend, p.opts)
	if err != nil {
		return "", fmt.Errorf("create %s cluster: %w", p.backend, err)
	}
	if err := b.Create(ctx); err != nil {
		// Nothing is stored in the context on failure, so Finish cannot
		// destroy what a half-made cluster left behind: do it here.
		return "", fmt.Errorf("create %s cluster: %w", p.backend, errors.Join(err, b.Destroy(context.WithoutCancel(ctx))))
	}
	p.b = b
	return b.Info().Kubeconfig, nil
}

// CreateWithConfig implements support.E2EClusterProvider. The lab's
// backends are configured through options, not a config file.
func (p *Provider) CreateWithConfig(context.Context, string) (string, error) {
	return "", errors.New("create cluster with a config file: not supported; use the provider's options")
}

// GetKubeconfig implements support.E2EClusterProvider.
func (p *Provider) GetKubeconfig() string {
	if p.b == nil {
		return ""
	}
	return p.b.Info().Kubeconfig
}

// GenerateKubeconfig implements support.E2EClusterProvider. The backend
// writes its admin kubeconfig when it creates the cluster.
func (p *Provider) GenerateKubeconfig(args ...string) (string, error) {
	if p.b == nil {
		return "", errors.New("generate kubeconfig: the cluster was not created")
	}
	if len(args) > 0 {
		return "", fmt.Errorf("generate kubeconfig: no arguments are taken (got %q)", args)
	}
	return p.b.Info().Kubeconfig, nil
}

// GetKubectlContext implements support.E2EClusterProvider: the current
// context of the admin kubeconfig.
func (p *Provider) GetKubectlContext() string {
	kc, err := clientcmd.LoadFromFile(p.GetKubeconfig())
	if err != nil {
		return ""
	}
	return kc.CurrentContext
}

// ExportLogs implements support.E2EClusterProvider.
func (p *Provider) ExportLogs(context.Context, string) error {
	return fmt.Errorf("export logs: not supported by the %s backend", p.backend)
}

// Destroy implements support.E2EClusterProvider.
func (p *Provider) Destroy(ctx context.Context) error {
	if p.b == nil {
		return nil
	}
	if err := p.b.Destroy(ctx); err != nil {
		return fmt.Errorf("destroy %s cluster: %w", p.backend, err)
	}
	return nil
}

// WaitForControlPlane implements support.E2EClusterProvider. Nothing to
// wait for: the backend's Create returns once kube-apiserver serves.
func (p *Provider) WaitForControlPlane(context.Context, klient.Client) error { return nil }

// KubernetesRestConfig implements support.E2EClusterProvider: the admin's
// REST config.
func (p *Provider) KubernetesRestConfig() *rest.Config {
	if p.b == nil {
		return nil
	}
	return p.b.AdminConfig()
}
