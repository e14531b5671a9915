package app

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/report"
)

func newExport(streams IOStreams) *cobra.Command {
	var format, lang, file string
	cmd := &cobra.Command{
		Use:   "export [SCENARIO | --file PATH] --format sh|md",
		Short: "Write a scenario as a handout: the commands a person types on a kind cluster, with the expected answers",
		Args: func(_ *cobra.Command, args []string) error {
			if (len(args) == 1) == (file != "") || len(args) > 1 {
				return usageError("give a scenario name (see anonlab list) or --file PATH")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if !slices.Contains([]string{"sh", "md"}, format) {
				return usageError("--format %q: want sh or md", format)
			}
			if !slices.Contains(steps.Languages, lang) {
				return usageError("--lang %q: want en or ja", lang)
			}
			sc, err := loadScenario(file, args)
			if err != nil {
				return err
			}
			if format == "md" {
				return report.WriteMarkdownHandout(streams.Out, sc, lang)
			}
			return report.WriteShellHandout(streams.Out, sc, lang)
		},
	}
	cmd.Flags().StringVar(&format, "format", "sh", "sh (a bash script) or md (Markdown)")
	cmd.Flags().StringVar(&lang, "lang", defaultLang(), "language of the explanations: en or ja")
	cmd.Flags().StringVar(&file, "file", "", "export the scenario in this YAML file")
	return cmd
}

// loadScenario reads --file PATH or the embedded scenario named by args.
func loadScenario(file string, args []string) (*steps.Scenario, error) {
	if file != "" {
		return steps.LoadFile(file)
	}
	return steps.Load(args[0])
}
