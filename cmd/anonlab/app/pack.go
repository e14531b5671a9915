package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/kind"
	"github.com/anonlab/anonlab/steps/cluster/roompack"
)

func newPack(streams IOStreams) *cobra.Command {
	var k8sVersion, source string
	var nodeImage bool
	cmd := &cobra.Command{
		Use:   "pack FILE",
		Short: "Write a room pack: the local backend's binaries (and the kind node image) in one file, for machines with no internet",
		Long: `Write a room pack to FILE: one tar.gz with kube-apiserver and etcd (and
kubectl when the cache has it) for --kubernetes-version, from the user
cache, downloaded or built first the way 'anonlab binaries' does when they
are not there (--binaries-source), plus manifest.json with the SHA-256 of
each file, the Kubernetes version, the platform and the version of this
anonlab.

With --node-image the pack also holds the kind node image the lab uses for
that version (anonlab/node:VERSION, which 'make kind-node-image' builds), as
'docker save' writes it.

'anonlab unpack FILE' installs a pack on another machine of the same
platform.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkSource(source); err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			ctx = cluster.WithProgress(ctx, progressPrinter(streams.Err))
			contents := roompack.Contents{Lab: version(), KubernetesVersion: k8sVersion}
			if nodeImage {
				rt, err := kind.Detect(ctx)
				if err != nil {
					return fmt.Errorf("pack the node image: %w", err)
				}
				contents.NodeImage = kind.LabNodeImage(k8sVersion)
				if !rt.HasImage(ctx, contents.NodeImage) {
					return fmt.Errorf("pack the node image: %s has no image %s; 'make kind-node-image' builds it", rt.Name, contents.NodeImage)
				}
				contents.SaveImage = rt.SaveImage
			}
			dir, err := binaries.Resolve(ctx, k8sVersion, binaries.WithSource(source))
			if err != nil {
				return err
			}
			contents.BinariesDir = dir
			m, err := roompack.Write(ctx, args[0], contents)
			if err != nil {
				return err
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "wrote %s (%.0f MB): %s for Kubernetes %s on %s, made by anonlab %s\n",
				args[0], float64(fi.Size())/1e6, packed(m), m.KubernetesVersion, m.Platform, m.Lab)
			return nil
		},
	}
	cmd.Flags().StringVar(&k8sVersion, "kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	cmd.Flags().BoolVar(&nodeImage, "node-image", false, "add the kind node image anonlab/node:VERSION (needs Docker or Podman)")
	addSourceFlag(cmd.Flags(), &source)
	return cmd
}

func newUnpack(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "unpack FILE",
		Short: "Install a room pack that 'anonlab pack' wrote: verify it, put its binaries into the cache, load its node image",
		Long: `Install the room pack FILE that 'anonlab pack' wrote.

Every file is checked against the SHA-256 in the pack's manifest before
anything is installed: a pack that differs from its manifest, holds anything
else, or was made for another platform is refused, naming the file (and both
sums), and nothing is installed. Then kube-apiserver and etcd go into the user
cache ($XDG_CACHE_HOME/anonlab/VERSION), replacing what is there, where the
local backend finds them with no build; a node image in the pack is loaded
into Docker (or Podman) when one answers. unpack says when the pack was made
by another version of anonlab.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			var engine string
			load := func(ctx context.Context, r io.Reader) error {
				rt, err := kind.Detect(ctx) // only for a pack with an image
				if err != nil {
					return err
				}
				engine = rt.Name
				return rt.LoadImage(ctx, r)
			}
			res, err := roompack.Unpack(ctx, args[0], load)
			if res.Dir == "" {
				return err
			}
			m := res.Manifest
			fmt.Fprintf(streams.Out, "installed %s for Kubernetes %s into %s\n", strings.Join(binariesOf(m), ", "), m.KubernetesVersion, res.Dir)
			switch {
			case res.ImageLoaded:
				fmt.Fprintf(streams.Out, "loaded node image %s into %s\n", m.NodeImage, engine)
			case errors.Is(err, cluster.ErrNotAvailable):
				// The binaries are enough for the local backend.
				fmt.Fprintf(streams.Err, "anonlab: node image %s not loaded (the binaries are installed): %v\n", m.NodeImage, errors.Unwrap(err))
			case err != nil:
				return err
			}
			if lab := version(); m.Lab != lab {
				fmt.Fprintf(streams.Err, "anonlab: the pack was made by anonlab %s; this is anonlab %s\n", m.Lab, lab)
			}
			return nil
		},
	}
}

// packed lists what a pack holds: "kube-apiserver, etcd, kubectl and node
// image anonlab/node:v1.37.2".
func packed(m roompack.Manifest) string {
	s := strings.Join(binariesOf(m), ", ")
	if m.NodeImage != "" {
		s += " and node image " + m.NodeImage
	}
	return s
}

func binariesOf(m roompack.Manifest) []string {
	var names []string
	for _, f := range m.Files {
		if name, ok := strings.CutPrefix(f.Name, "bin/"); ok {
			names = append(names, name)
		}
	}
	return names
}
