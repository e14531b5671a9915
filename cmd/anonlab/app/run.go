package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/report"
)

type runFlags struct {
	file        string
	backend     string
	version     string
	binariesDir string
	output      string
	lang        string
	keep        bool
	allowOpen   bool
	kubeconfig  string
	kubeContext string
	nodeImage   string
	report      string
}

var outputs = []string{"text", "json", "junit"}

func newRun(streams IOStreams) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [SCENARIO | --file PATH]",
		Short: "Run a scenario non-interactively; exit 0 when every expectation holds, 1 when one does not, 2 for bad usage",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError("run takes one scenario name, got %d", len(args))
			}
			if (len(args) == 1) == (f.file != "") {
				return usageError("give a scenario name (see anonlab list) or --file PATH, not both")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runScenario(c.Context(), streams, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "run the scenario in this YAML file")
	fl.StringVar(&f.backend, "backend", backends.Auto, "where the control plane comes from: "+strings.Join(backends.Names, ", ")+" (auto: kind when Docker or Podman answers and has a node image, else local)")
	fl.StringVar(&f.nodeImage, "node-image", "", "kind backend: the node image (default: $ANONLAB_NODE_IMAGE, else the one make kind-node-image built for --kubernetes-version, else kind's)")
	fl.StringVar(&f.version, "kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	fl.StringVar(&f.binariesDir, "binaries-dir", "", "local backend: use kube-apiserver and etcd from this directory")
	fl.StringVarP(&f.output, "output", "o", "text", "report format: "+strings.Join(outputs, ", "))
	fl.StringVar(&f.report, "report", "", "also write the run to this file: JUnit XML when it ends in .xml, else JSON lines")
	fl.StringVar(&f.lang, "lang", defaultLang(), "language of titles and explanations: "+strings.Join(steps.Languages, ", "))
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "existing backend: the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "existing backend: the kubeconfig context (default its current context)")
	fl.BoolVar(&f.keep, "keep", false, "keep the cluster running at the end")
	fl.BoolVar(&f.allowOpen, "i-understand-this-opens-the-cluster", false, "let steps open a cluster the lab did not create to anonymous users (still undone in cleanup)")
	return cmd
}

func runScenario(parent context.Context, streams IOStreams, f *runFlags, args []string) error {
	if !slices.Contains(outputs, f.output) {
		return usageError("--output %q: want one of %s", f.output, strings.Join(outputs, ", "))
	}
	if !slices.Contains(steps.Languages, f.lang) {
		return usageError("--lang %q: want one of %s", f.lang, strings.Join(steps.Languages, ", "))
	}
	sc, err := loadScenario(f.file, args)
	if err != nil {
		return err
	}
	opts := backends.Options{
		KubernetesVersion: f.version, BinariesDir: f.binariesDir, Kubeconfig: f.kubeconfig, Context: f.kubeContext, NodeImage: f.nodeImage,
	}
	name, why := backends.Pick(parent, f.backend, &opts)
	if why != "" {
		fmt.Fprintf(streams.Err, "anonlab: backend %s: %s\n", name, why)
	}
	b, err := backends.New(name, opts)
	if err != nil {
		return &exitError{code: ExitBadUsage, err: err}
	}
	ctx, stop := signalContext(parent, streams)
	defer stop()

	sink := outputSink(f.output, streams)
	if f.report != "" {
		file, err := os.OpenFile(f.report, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return usageError("--report: %v", err)
		}
		defer file.Close()
		format := "json"
		if strings.HasSuffix(f.report, ".xml") {
			format = "junit"
		}
		sink = report.Tee{sink, outputSink(format, IOStreams{Out: file, Err: io.Discard})}
	}
	sum := steps.Run(ctx, sc, b, sink, steps.WithLang(f.lang), steps.WithKeepCluster(f.keep), steps.WithAllowOpen(f.allowOpen))
	if !f.keep {
		// The scenario's cleanup destroys the cluster; this is the net under
		// it for a scenario that forgot, or a step that failed.
		if err := b.Destroy(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return &exitError{code: ExitFailed, err: errors.New("interrupted: the remaining steps were skipped, cleanup ran")}
	}
	if !sum.OK() {
		return errFailed
	}
	return nil
}

func outputSink(format string, streams IOStreams) steps.Sink {
	switch format {
	case "json":
		return report.NewJSONLines(streams.Out)
	case "junit":
		return report.NewJUnit(streams.Out)
	}
	return report.NewText(streams.Out, streams.Err)
}

// defaultLang is ja when $LANG (or $LC_ALL) says Japanese, else en.
func defaultLang() string {
	for _, v := range []string{os.Getenv("LC_ALL"), os.Getenv("LANG")} {
		if strings.HasPrefix(v, "ja") {
			return "ja"
		}
	}
	return "en"
}
