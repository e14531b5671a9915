package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
)

func newList(streams IOStreams) *cobra.Command {
	var lang string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the embedded scenarios: name, then title",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			all, err := steps.List()
			if err != nil {
				return err
			}
			for _, sc := range all {
				fmt.Fprintf(streams.Out, "%s\t%s\n", sc.Name, sc.Title.In(lang))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&lang, "lang", defaultLang(), "language of the titles: en or ja")
	return cmd
}
