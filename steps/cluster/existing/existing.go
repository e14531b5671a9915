// Package existing runs scenarios against a cluster reached through a
// kubeconfig. It cannot change kube-apiserver's flags, and Destroy leaves
// the cluster as it is. Unless the ledger records that the lab created this
// very cluster (its Identity, never its URL), the engine writes nothing to
// it without the user's opt-in (docs/architecture.md, Safety).
package existing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// Name is the backend's name for --backend.
const Name = "existing"

type options struct {
	kubeconfig string
	context    string
}

// Option configures the backend.
type Option func(*options)

// WithKubeconfig reads this kubeconfig file instead of $KUBECONFIG or
// ~/.kube/config.
func WithKubeconfig(path string) Option { return func(o *options) { o.kubeconfig = path } }

// WithContext chooses a kubeconfig context other than the current one.
func WithContext(name string) Option { return func(o *options) { o.context = name } }

// Backend is a cluster reached through a kubeconfig.
type Backend struct {
	opts options
	cfg  *rest.Config
	dir  string // private copy of the CA for the commands shown
	info cluster.Info
	// entry records what a run with the opt-in applies; it is saved only
	// once something is recorded in it.
	entry *ledger.Entry
}

var (
	_ cluster.Backend  = (*Backend)(nil)
	_ cluster.Recorder = (*Backend)(nil)
)

// New returns a backend for the kubeconfig; nothing is read until Create.
func New(opts ...Option) *Backend {
	b := &Backend{}
	for _, o := range opts {
		o(&b.opts)
	}
	return b
}

// Name implements cluster.Backend.
func (b *Backend) Name() string { return Name }

// Info implements cluster.Backend.
func (b *Backend) Info() cluster.Info { return b.info }

// Entry implements cluster.Recorder.
func (b *Backend) Entry() *ledger.Entry { return b.entry }

// AdminConfig implements cluster.Backend: the kubeconfig's credentials.
func (b *Backend) AdminConfig() *rest.Config { return rest.CopyConfig(b.cfg) }

// Create implements cluster.Backend: it only checks the cluster answers.
func (b *Backend) Create(ctx context.Context) error {
	if b.cfg != nil {
		return nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if b.opts.kubeconfig != "" {
		rules.ExplicitPath = b.opts.kubeconfig
	}
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: b.opts.context})
	cfg, err := kc.ClientConfig()
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	if cfg.Insecure {
		return fmt.Errorf("the kubeconfig skips TLS verification (insecure-skip-tls-verify): the lab verifies the apiserver against its CA; give a kubeconfig with certificate-authority(-data)")
	}
	if err := rest.LoadTLSFiles(cfg); err != nil {
		return fmt.Errorf("read the kubeconfig's certificates: %w", err)
	}
	version, id, err := cluster.ReadServer(ctx, cfg)
	if apierrors.IsForbidden(err) {
		// A user who may not read the kube-system namespace (a CI account
		// that only reads RBAC and asks reviews) cannot tell which cluster
		// this is: it is then simply not one the lab created.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("reach the cluster: %w", err)
	}
	raw, err := kc.RawConfig()
	if err != nil {
		return err
	}
	ctxName := b.opts.context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	user := "the kubeconfig's user"
	if c, ok := raw.Contexts[ctxName]; ok && c.AuthInfo != "" {
		user = c.AuthInfo
	}
	if b.dir, err = os.MkdirTemp("", "anonlab-existing-"); err != nil {
		return err
	}
	caFile := filepath.Join(b.dir, "ca.crt")
	if err := os.WriteFile(caFile, cfg.CAData, 0o600); err != nil {
		return err
	}
	b.cfg = cfg
	b.info = cluster.Info{
		Backend:           Name,
		KubernetesVersion: version,
		URL:               cfg.Host,
		CAFile:            caFile,
		CAData:            cfg.CAData,
		Kubeconfig:        kubeconfigPath(rules),
		AdminName:         user,
		CreatedByLab:      ledger.LabCluster(id.CAFingerprint, id.KubeSystemUID),
		Identity:          id,
	}
	b.entry = ledger.NewEntry(Name)
	b.entry.URL, b.entry.Kubeconfig, b.entry.Context = cfg.Host, b.info.Kubeconfig, b.opts.context
	// The lab's own files (the CA copy, $MANIFESTS): removed by Destroy, or
	// by anonlab cleanup after a run that could not.
	b.entry.Dir = b.dir
	b.entry.CAFingerprint, b.entry.KubeSystemUID = id.CAFingerprint, id.KubeSystemUID
	return nil
}

// Destroy implements cluster.Backend: the cluster is left as it is; the
// lab's own copy of the CA is removed, and the run's record once nothing it
// applied is left (otherwise `anonlab cleanup` revokes it).
func (b *Backend) Destroy(context.Context) error {
	var errs []error
	if b.entry != nil && len(b.entry.Objects) == 0 {
		errs = append(errs, b.entry.Delete())
	}
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
		b.dir = ""
	}
	return errors.Join(errs...)
}

func kubeconfigPath(rules *clientcmd.ClientConfigLoadingRules) string {
	if rules.ExplicitPath != "" {
		return rules.ExplicitPath
	}
	if p := rules.GetDefaultFilename(); p != clientcmd.RecommendedHomeFile {
		return p
	}
	return ""
}
