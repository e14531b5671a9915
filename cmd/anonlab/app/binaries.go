package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

func newBinaries(streams IOStreams) *cobra.Command {
	var version, dir string
	cmd := &cobra.Command{
		Use:   "binaries",
		Short: "Print the directory holding kube-apiserver and etcd for the local backend, building them if needed",
		Long: `Print the directory holding kube-apiserver and etcd for the local backend.

They are looked up in this order: --binaries-dir, $ANONLAB_BINARIES_DIR,
$KUBEBUILDER_ASSETS, the user cache ($XDG_CACHE_HOME/anonlab/VERSION), and
else built from the Go module sources of that Kubernetes release (about
4 minutes and 2 GB of memory the first time on 2 cores; Go and the module
proxy are needed, no download site).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			ctx = cluster.WithProgress(ctx, progressPrinter(streams.Err))
			path, err := binaries.Resolve(ctx, version, binaries.WithDir(backends.BinariesDir(dir)))
			if err != nil {
				return err
			}
			fmt.Fprintln(streams.Out, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	cmd.Flags().StringVar(&dir, "binaries-dir", "", "use kube-apiserver and etcd from this directory")
	return cmd
}
