package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/existing"
)

// labFlags are the flags of every command that runs a scenario (run, tui):
// where the cluster comes from, the language, and what the run may do.
type labFlags struct {
	backend     string
	version     string
	binariesDir string
	source      string
	nodeImage   string
	kubeconfig  string
	kubeContext string
	lang        string
	keep        bool
	allowOpen   bool
	handsOn     bool
	stepTimeout time.Duration
}

func (f *labFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.backend, "backend", backends.Auto, "where the control plane comes from: "+strings.Join(backends.Names, ", ")+" (auto: kind when Docker or Podman answers and has a node image, else local)")
	fl.StringVar(&f.version, "kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	fl.StringVar(&f.binariesDir, "binaries-dir", "", "local backend: use kube-apiserver and etcd from this directory")
	addSourceFlag(fl, &f.source)
	fl.StringVar(&f.nodeImage, "node-image", "", "kind backend: the node image (default: $ANONLAB_NODE_IMAGE, else the one make kind-node-image built for --kubernetes-version, else kind's)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "existing backend: the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "existing backend: the kubeconfig context (default its current context)")
	fl.StringVar(&f.lang, "lang", defaultLang(), "language of titles and explanations: "+strings.Join(steps.Languages, ", "))
	fl.BoolVar(&f.keep, "keep", false, "keep the cluster running at the end")
	fl.BoolVar(&f.handsOn, "hands-on", false, "hands-on mode: you type each step (eval \"$(anonlab env)\" in another shell), the lab checks it by what kube-apiserver's audit log and the cluster show, and says why the answer was 401, 403 or 200 (local and kind backends)")
	fl.DurationVar(&f.stepTimeout, "step-timeout", 15*time.Minute, "hands-on mode: a step not done within this time fails")
	fl.BoolVar(&f.allowOpen, "i-understand-this-opens-the-cluster", false, "let steps write to a cluster the lab did not create, and open it to anonymous users (everything applied is recorded and revoked in cleanup); without it such a cluster is only read")
}

func (f *labFlags) validate() error {
	if !slices.Contains(steps.Languages, f.lang) {
		return usageError("--lang %q: want one of %s", f.lang, strings.Join(steps.Languages, ", "))
	}
	if err := checkSource(f.source); err != nil {
		return err
	}
	if f.stepTimeout <= 0 {
		return usageError("--step-timeout %s: want a positive duration", f.stepTimeout)
	}
	return nil
}

// newBackend resolves --backend auto (saying what it chose and why on
// stderr) and returns the backend; nothing is started.
func (f *labFlags) newBackend(ctx context.Context, streams IOStreams) (cluster.Backend, error) {
	opts := backends.Options{
		KubernetesVersion: f.version, BinariesDir: f.binariesDir, BinariesSource: f.source, Kubeconfig: f.kubeconfig, Context: f.kubeContext, NodeImage: f.nodeImage, Keep: f.keep,
	}
	name, why := backends.Pick(ctx, f.backend, &opts)
	if why != "" {
		fmt.Fprintf(streams.Err, "anonlab: backend %s: %s\n", name, why)
	}
	if f.handsOn && name == existing.Name {
		return nil, usageError("--hands-on needs a cluster the lab creates (--backend local or kind): on a cluster it did not create the lab only reads, and the attendee's steps would open it to anonymous users")
	}
	b, err := backends.New(name, opts)
	if err != nil {
		return nil, &exitError{code: ExitBadUsage, err: err}
	}
	return b, nil
}

// runOptions are the engine options the flags ask for.
func (f *labFlags) runOptions() []steps.Option {
	opts := []steps.Option{steps.WithLang(f.lang), steps.WithKeepCluster(f.keep), steps.WithAllowOpen(f.allowOpen)}
	if f.handsOn {
		opts = append(opts, steps.WithHandsOn(nil, f.stepTimeout))
	}
	return opts
}

// addSourceFlag adds --binaries-source, for every command that may need
// the local backend's binaries.
func addSourceFlag(fl *pflag.FlagSet, source *string) {
	fl.StringVar(source, "binaries-source", binaries.DefaultSource(), "local backend: where kube-apiserver and etcd come from when not cached: "+
		"download (envtest's release, from $"+binaries.IndexEnv+" or upstream, its checksum checked), build (from the Go module sources, ~15 min), "+
		"or auto: download, else build when the release cannot be reached (default $"+binaries.SourceEnv+", else auto)")
}

func checkSource(source string) error {
	if err := binaries.ValidSource(source); err != nil {
		return usageError("--binaries-source: %v", err)
	}
	return nil
}
