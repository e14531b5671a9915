package app

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/report"
)

func newMatrix(streams IOStreams) *cobra.Command {
	var versions, backend, lang, file string
	cmd := &cobra.Command{
		Use:   "matrix [SCENARIO | --file PATH] --kubernetes-versions V1,V2,...",
		Short: "Run a scenario on several Kubernetes versions and print a Markdown table of what each step observed",
		Long: `Run a scenario on each Kubernetes version in turn (binaries built one
version at a time when they are not cached) and print a Markdown table: a
row per step, a column per version, each cell the HTTP status observed and
whether the expectations held. Exit 1 when any expectation failed.`,
		Args: func(_ *cobra.Command, args []string) error {
			if (len(args) == 1) == (file != "") || len(args) > 1 {
				return usageError("give a scenario name (see anonlab list) or --file PATH")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			sc, err := loadScenario(file, args)
			if err != nil {
				return err
			}
			var vs []string
			for _, v := range strings.Split(versions, ",") {
				if v = strings.TrimSpace(v); v != "" {
					vs = append(vs, v)
				}
			}
			if len(vs) == 0 {
				return usageError("--kubernetes-versions: give at least one version")
			}
			ctx, stop := signalContext(c.Context(), streams)
			defer stop()
			runs := map[string]*report.Observer{}
			failed := false
			for _, v := range vs {
				b, err := backends.New(backend, backends.Options{KubernetesVersion: v})
				if err != nil {
					return &exitError{code: ExitBadUsage, err: err}
				}
				fmt.Fprintf(streams.Err, "anonlab: %s on %s (%s backend)\n", sc.Name, v, backend)
				obs := report.NewObserver()
				sum := steps.Run(ctx, sc, b, report.Tee{obs, progressSink(streams)}, steps.WithLang(lang))
				_ = b.Destroy(ctx)
				runs[v] = obs
				failed = failed || !sum.OK()
				if ctx.Err() != nil {
					break
				}
			}
			if err := report.WriteMatrix(streams.Out, vs, runs); err != nil {
				return err
			}
			if failed || ctx.Err() != nil {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&versions, "kubernetes-versions", cluster.DefaultKubernetesVersion, "comma-separated Kubernetes releases")
	cmd.Flags().StringVar(&backend, "backend", "local", "local or kind")
	cmd.Flags().StringVar(&lang, "lang", defaultLang(), "language of the step titles: en or ja")
	cmd.Flags().StringVar(&file, "file", "", "run the scenario in this YAML file")
	return cmd
}

// progressSink shows long work (binary builds, cluster creation) on stderr.
func progressSink(streams IOStreams) steps.Sink {
	show := progressPrinter(streams.Err)
	return steps.SinkFunc(func(e steps.Event) {
		if p, ok := e.(steps.Progress); ok {
			show(cluster.Progress{Phase: p.Phase, Detail: p.Detail, Elapsed: msDuration(p.ElapsedMS), Done: p.Done})
		}
	})
}
