package app

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps/cluster"
)

// version says which anonlab this is: the module's version, or for a build
// from a checkout the VCS revision (and whether the tree was modified), as
// the Go toolchain recorded it in the binary.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		return "revision " + rev + modified
	}
	if v == "" {
		return "(devel)"
	}
	return v
}

// versionText is what `anonlab version` and `anonlab --version` print.
func versionText() string {
	return fmt.Sprintf("anonlab %s\ngo: %s %s/%s\ndefault Kubernetes version: %s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, cluster.DefaultKubernetesVersion)
}

func newVersion(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print anonlab's version, its Go version and the default Kubernetes version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(streams.Out, versionText())
			return err
		},
	}
}
