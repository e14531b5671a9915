package app

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/report"
)

type runFlags struct {
	labFlags
	file   string
	output string
	report string
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
	fl.StringVarP(&f.output, "output", "o", "text", "report format: "+strings.Join(outputs, ", "))
	fl.StringVar(&f.report, "report", "", "also write the run to this file: JUnit XML when it ends in .xml, else JSON lines")
	f.add(fl)
	return cmd
}

func runScenario(parent context.Context, streams IOStreams, f *runFlags, args []string) error {
	if !slices.Contains(outputs, f.output) {
		return usageError("--output %q: want one of %s", f.output, strings.Join(outputs, ", "))
	}
	if err := f.validate(); err != nil {
		return err
	}
	sc, err := loadScenario(f.file, args)
	if err != nil {
		return err
	}
	b, err := f.newBackend(parent, streams)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(parent, streams)
	defer stop()
	// The net under the scenario's own cleanup (a scenario that forgot, a
	// step that failed, a panic): deferred, so it runs on every path.
	destroy := func() error {
		if f.keep && b.Info().Disposable {
			return nil
		}
		// A cluster Destroy would not delete (existing) keeps running
		// anyway: only the lab's own files go.
		return b.Destroy(context.WithoutCancel(ctx))
	}
	defer func() { _ = destroy() }()

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
	sum := steps.Run(ctx, sc, b, sink, f.runOptions()...)
	if err := destroy(); err != nil {
		return err
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
