// Package backends maps a backend name (--backend) to a constructor, and
// reads the environment overrides. It is the one place that imports every
// backend, for the CLI and the e2e suites alike.
package backends

import (
	"fmt"
	"os"
	"strings"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/existing"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// Names lists the backends --backend accepts.
var Names = []string{local.Name, "kind", existing.Name}

// Options are the settings any backend may use.
type Options struct {
	// KubernetesVersion is the release to run (local, kind).
	KubernetesVersion string
	// BinariesDir holds kube-apiserver and etcd for local; when empty,
	// $ANONLAB_BINARIES_DIR, then $KUBEBUILDER_ASSETS are used, else the
	// cache.
	BinariesDir string
	// NodeImage is the node image for kind; when empty, the kind backend
	// picks one for KubernetesVersion.
	NodeImage string
	// Kubeconfig and Context choose the cluster for existing; when empty,
	// $KUBECONFIG or ~/.kube/config and its current context.
	Kubeconfig string
	Context    string
}

// New returns the backend called name.
func New(name string, o Options) (cluster.Backend, error) {
	if o.KubernetesVersion == "" {
		o.KubernetesVersion = cluster.DefaultKubernetesVersion
	}
	switch name {
	case local.Name:
		opts := []local.Option{local.WithKubernetesVersion(o.KubernetesVersion)}
		if dir := BinariesDir(o.BinariesDir); dir != "" {
			opts = append(opts, local.WithBinariesDir(dir))
		}
		return local.New(opts...), nil
	case existing.Name:
		return existing.New(existing.WithKubeconfig(o.Kubeconfig), existing.WithContext(o.Context)), nil
	case "kind":
		return nil, fmt.Errorf("%w: the %s backend is not available yet; use --backend local", cluster.ErrNotAvailable, name)
	}
	return nil, fmt.Errorf("unknown backend %q (known: %s)", name, strings.Join(Names, ", "))
}

// BinariesDir is the explicit binaries directory: the flag's value, else
// $ANONLAB_BINARIES_DIR, else envtest's $KUBEBUILDER_ASSETS.
func BinariesDir(flag string) string {
	for _, dir := range []string{flag, os.Getenv("ANONLAB_BINARIES_DIR"), os.Getenv("KUBEBUILDER_ASSETS")} {
		if dir != "" {
			return dir
		}
	}
	return ""
}
