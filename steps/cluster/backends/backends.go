// Package backends maps a backend name (--backend) to a constructor, and
// reads the environment overrides. It is the one place that imports every
// backend, for the CLI and the e2e suites alike.
package backends

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/existing"
	"github.com/anonlab/anonlab/steps/cluster/kind"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// Auto is the backend name that picks kind or local by what the machine
// has (see Pick).
const Auto = "auto"

// Names lists the backends --backend accepts.
var Names = []string{Auto, local.Name, kind.Name, existing.Name}

// Options are the settings any backend may use.
type Options struct {
	// KubernetesVersion is the release to run (local, kind).
	KubernetesVersion string
	// BinariesDir holds kube-apiserver and etcd for local; when empty,
	// $ANONLAB_BINARIES_DIR, then $KUBEBUILDER_ASSETS are used, else the
	// cache.
	BinariesDir string
	// BinariesSource says where local's binaries come from when they are
	// not cached: auto, download or build (default
	// $ANONLAB_BINARIES_SOURCE, else auto).
	BinariesSource string
	// NodeImage is the node image for kind; when empty, $ANONLAB_NODE_IMAGE,
	// else the kind backend picks one for KubernetesVersion: the image
	// `make kind-node-image` built for it if there is one, else kind's
	// default.
	NodeImage string
	// Kubeconfig and Context choose the cluster for existing; when empty,
	// $KUBECONFIG or ~/.kube/config and its current context.
	Kubeconfig string
	Context    string
	// Keep is --keep: the cluster outlives the lab. local then starts its
	// processes so that they survive the lab's death (kind's containers
	// always do).
	Keep bool
}

// New returns the backend called name.
func New(name string, o Options) (cluster.Backend, error) {
	if o.KubernetesVersion == "" {
		o.KubernetesVersion = cluster.DefaultKubernetesVersion
	}
	switch name {
	case local.Name:
		opts := []local.Option{local.WithKubernetesVersion(o.KubernetesVersion), local.WithKeep(o.Keep), local.WithBinariesSource(o.BinariesSource)}
		if dir := BinariesDir(o.BinariesDir); dir != "" {
			opts = append(opts, local.WithBinariesDir(dir))
		}
		return local.New(opts...), nil
	case existing.Name:
		return existing.New(existing.WithKubeconfig(o.Kubeconfig), existing.WithContext(o.Context)), nil
	case kind.Name:
		opts := []kind.Option{kind.WithKubernetesVersion(o.KubernetesVersion)}
		if image := NodeImage(o.NodeImage); image != "" {
			opts = append(opts, kind.WithNodeImage(image))
		}
		return kind.New(opts...), nil
	case Auto:
		name, _ := Pick(context.Background(), Auto, &o)
		return New(name, o)
	}
	return nil, fmt.Errorf("unknown backend %q (known: %s)", name, strings.Join(Names, ", "))
}

// Pick resolves --backend auto, and returns any other name as it is: kind
// when Docker or Podman answers and has a node image for it (the one asked
// for, else the one `make kind-node-image` built for the Kubernetes
// version, else kind's default; never pulled), else local. The reason is
// for the user; o.NodeImage is set to the image kind will use.
func Pick(ctx context.Context, name string, o *Options) (chosen, reason string) {
	if name != Auto {
		return name, ""
	}
	version := o.KubernetesVersion
	if version == "" {
		version = cluster.DefaultKubernetesVersion
	}
	rt, err := kind.Detect(ctx)
	if err != nil {
		return local.Name, "no kind: " + err.Error()
	}
	image := NodeImage(o.NodeImage)
	if image == "" {
		image = rt.NodeImageFor(ctx, version)
	}
	// auto never pulls: a guess must not reach out to a registry. An
	// explicit --backend kind pulls as kind does.
	if !rt.HasImage(ctx, image) {
		return local.Name, fmt.Sprintf("%s answers, but the kind node image %s is not there; `make kind-node-image` builds one with no registry (or pull it where a registry is reachable, then use --backend kind)", rt.Name, image)
	}
	o.NodeImage = image
	return kind.Name, fmt.Sprintf("%s %s answers and has the node image %s", rt.Name, rt.Version, image)
}

// NodeImage is the explicit kind node image: the flag's value, else
// $ANONLAB_NODE_IMAGE.
func NodeImage(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("ANONLAB_NODE_IMAGE")
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
