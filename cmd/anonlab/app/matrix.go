package app

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/existing"
	"github.com/anonlab/anonlab/steps/cluster/kind"
	"github.com/anonlab/anonlab/steps/cluster/local"
	"github.com/anonlab/anonlab/steps/report"
)

// BehaviourVersions is what `anonlab matrix --all` runs when no versions
// are given, and make matrix's MATRIX_VERSIONS: the article's Kubernetes,
// the newest patch of the releases where anonymous access changed (the
// ServiceAccount Secret gone in 1.24, KEP-4633 alpha in 1.31, beta in
// 1.32, GA in 1.34), and the lab's own.
var BehaviourVersions = []string{"v1.20.2", "v1.24.17", "v1.28.15", "v1.31.14", "v1.32.13", "v1.34.12", cluster.DefaultKubernetesVersion}

func newMatrix(streams IOStreams) *cobra.Command {
	var versions, backend, binariesDir, source, nodeImage, lang, file string
	var all bool
	cmd := &cobra.Command{
		Use:   "matrix [SCENARIO | --file PATH | --all] --kubernetes-versions V1,V2,...",
		Short: "Run a scenario on several Kubernetes versions and print a Markdown table of what each step observed",
		Long: `Run a scenario on each Kubernetes version in turn (binaries downloaded
or built one version at a time when they are not cached) and print a
Markdown table: a row per step, a column per version, each cell the HTTP
status observed and whether the expectations held. Each column's header is the version the
apiserver reported on /version. Exit 1 when any expectation failed, or
when two columns ran the same version.

--all runs every embedded scenario on each version (by default ` + strings.Join(BehaviourVersions, ", ") + `)
and prints docs/behaviour.md: a table per scenario, each cell passed or
failed with the HTTP status, or skipped and why; a version on which no
cluster could start is listed with the reason instead of a column.

A binaries directory (--binaries-dir, $ANONLAB_BINARIES_DIR,
$KUBEBUILDER_ASSETS), a node image (--node-image, $ANONLAB_NODE_IMAGE) or
the existing backend gives every version the same kube-apiserver: with
one of them, give one version.`,
		Args: func(_ *cobra.Command, args []string) error {
			given := len(args)
			if file != "" {
				given++
			}
			if all {
				given++
			}
			if given != 1 || len(args) > 1 {
				return usageError("give a scenario name (see anonlab list), --file PATH or --all")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			var scs []*steps.Scenario
			if all {
				var err error
				if scs, err = steps.List(); err != nil {
					return err
				}
				if !c.Flags().Changed("kubernetes-versions") {
					versions = strings.Join(BehaviourVersions, ",")
				}
			} else {
				sc, err := loadScenario(file, args)
				if err != nil {
					return err
				}
				scs = []*steps.Scenario{sc}
			}
			var vs []string
			for _, v := range strings.Split(versions, ",") {
				if v = strings.TrimSpace(v); v == "" {
					continue
				}
				if slices.Contains(vs, v) {
					return usageError("--kubernetes-versions: %s is given twice", v)
				}
				vs = append(vs, v)
			}
			if err := checkSource(source); err != nil {
				return err
			}
			if len(vs) == 0 {
				return usageError("--kubernetes-versions: give at least one version")
			}
			if pins := pinnedBy(backend, binariesDir, nodeImage); len(vs) > 1 && len(pins) > 0 {
				return usageError("--kubernetes-versions %s: every version would run the same kube-apiserver, fixed by %s; give one version, or drop that", strings.Join(vs, ","), strings.Join(pins, " and "))
			}
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			runs := map[string]map[string]*report.Observer{} // by scenario, then version
			failed := false
		versions:
			for _, v := range vs {
				for _, sc := range scs {
					b, err := backends.New(backend, backends.Options{KubernetesVersion: v, BinariesDir: binariesDir, BinariesSource: source, NodeImage: nodeImage})
					if err != nil {
						return &exitError{code: ExitBadUsage, err: err}
					}
					fmt.Fprintf(streams.Err, "anonlab: %s on %s (%s backend)\n", sc.Name, v, backend)
					obs := report.NewObserver()
					sum := steps.Run(ctx, sc, b, report.Tee{obs, progressSink(streams)}, steps.WithLang(lang))
					_ = b.Destroy(ctx)
					if runs[sc.Name] == nil {
						runs[sc.Name] = map[string]*report.Observer{}
					}
					runs[sc.Name][v] = obs
					failed = failed || !sum.OK()
					if ctx.Err() != nil {
						break versions
					}
				}
			}
			if all && ctx.Err() != nil {
				return errFailed // a behaviour.md of steps that did not run would mislead
			}
			var err error
			if all {
				err = report.WriteBehaviour(streams.Out, BehaviourVersions, vs, scs, runs)
			} else {
				err = report.WriteMatrix(streams.Out, vs, runs[scs[0].Name])
			}
			if err != nil {
				return err
			}
			for _, sc := range scs {
				if err := sameObserved(vs, runs[sc.Name]); err != nil {
					return &exitError{code: ExitFailed, err: err}
				}
			}
			if failed || ctx.Err() != nil {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "run every embedded scenario and print docs/behaviour.md (versions by default: "+strings.Join(BehaviourVersions, ",")+")")
	cmd.Flags().StringVar(&versions, "kubernetes-versions", cluster.DefaultKubernetesVersion, "comma-separated Kubernetes releases")
	cmd.Flags().StringVar(&backend, "backend", local.Name, "local or kind")
	cmd.Flags().StringVar(&binariesDir, "binaries-dir", "", "local backend: use kube-apiserver and etcd from this directory (one version only)")
	addSourceFlag(cmd.Flags(), &source)
	cmd.Flags().StringVar(&nodeImage, "node-image", "", "kind backend: the node image (one version only; default: $ANONLAB_NODE_IMAGE, else the one make kind-node-image built for each version, else kind's)")
	cmd.Flags().StringVar(&lang, "lang", defaultLang(), "language of the step titles: en or ja")
	cmd.Flags().StringVar(&file, "file", "", "run the scenario in this YAML file")
	return cmd
}

// pinnedBy names what makes backend run the same kube-apiserver whatever
// version is asked for: an explicit binaries directory (local), node image
// (kind), or the cluster there is (existing).
func pinnedBy(backend, binariesDir, nodeImage string) []string {
	var pins []string
	set := func(flag, value string, envs ...string) {
		if value != "" {
			pins = append(pins, flag+" "+value)
		}
		for _, env := range envs {
			if v := os.Getenv(env); v != "" {
				pins = append(pins, "$"+env+"="+v)
			}
		}
	}
	switch backend {
	case local.Name:
		set("--binaries-dir", binariesDir, "ANONLAB_BINARIES_DIR", "KUBEBUILDER_ASSETS")
	case kind.Name:
		set("--node-image", nodeImage, "ANONLAB_NODE_IMAGE")
	case backends.Auto:
		set("--binaries-dir", binariesDir, "ANONLAB_BINARIES_DIR", "KUBEBUILDER_ASSETS")
		set("--node-image", nodeImage, "ANONLAB_NODE_IMAGE")
	case existing.Name:
		pins = append(pins, "--backend existing (the cluster there is)")
	}
	return pins
}

// sameObserved reports two columns whose kube-apiserver said it was the same
// version: one of them did not run what its header asked for.
func sameObserved(versions []string, runs map[string]*report.Observer) error {
	seen := map[string]string{}
	for _, v := range versions {
		r := runs[v]
		if r == nil || r.KubernetesVersion == "" {
			continue
		}
		if first, ok := seen[r.KubernetesVersion]; ok {
			return fmt.Errorf("the columns %s and %s both ran kube-apiserver %s: the table does not compare versions", first, v, r.KubernetesVersion)
		}
		seen[r.KubernetesVersion] = v
	}
	return nil
}

// progressSink shows long work (binary builds, cluster creation) on stderr.
func progressSink(streams IOStreams) steps.Sink {
	show := progressPrinter(streams.Err)
	return steps.SinkFunc(func(e steps.Event) {
		if p, ok := e.(steps.Progress); ok {
			show(p.Backend())
		}
	})
}
