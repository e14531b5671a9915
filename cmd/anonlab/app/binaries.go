package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

func newBinaries(streams IOStreams) *cobra.Command {
	var version, dir, source string
	cmd := &cobra.Command{
		Use:   "binaries",
		Short: "Print the directory holding kube-apiserver and etcd for the local backend, downloading or building them if needed",
		Long: `Print the directory holding kube-apiserver and etcd for the local backend.

They are looked up in this order: --binaries-dir, $ANONLAB_BINARIES_DIR,
$KUBEBUILDER_ASSETS, the user cache ($XDG_CACHE_HOME/anonlab/VERSION).
When none has them they are put into the cache (--binaries-source):
envtest's release of that Kubernetes version is downloaded the way
setup-envtest does, from $ANONLAB_ENVTEST_INDEX (a mirror) or upstream's
index, and its SHA-512 checked against the index before anything is
unpacked; a mismatch is an error. When the index or the archive cannot
be reached (no answer within 3 s), auto says why in one line and builds
them from the Go module sources of that release instead (about 15 minutes
and 2 GB of memory the first time on 2 cores; Go and the module proxy are
needed). Two installs never run at once: they take a lock.

Releases before 1.24 also need kube-controller-manager (its token
controller makes the ServiceAccount Secrets the article reads); envtest's
releases have none, so they are built. A release whose module lacks its
generated OpenAPI definitions is built from a copy of the module in
$XDG_CACHE_HOME/anonlab/src with them generated as that release's build
did; a dependency too old for today's Go is raised to a pinned version,
and each pin applied is printed ("pin: module old → new: reason").`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkSource(source); err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			ctx = cluster.WithProgress(ctx, progressPrinter(streams.Err))
			path, err := binaries.Resolve(ctx, version, binaries.WithDir(backends.BinariesDir(dir)), binaries.WithSource(source))
			if err != nil {
				return err
			}
			for _, p := range binaries.Pins(path) {
				fmt.Fprintln(streams.Err, "pin:", p)
			}
			fmt.Fprintln(streams.Out, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	cmd.Flags().StringVar(&dir, "binaries-dir", "", "use kube-apiserver and etcd from this directory")
	addSourceFlag(cmd.Flags(), &source)
	return cmd
}
