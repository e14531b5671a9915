package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

func newEnv(streams IOStreams) *cobra.Command {
	var run string
	cmd := &cobra.Command{
		Use:   "env [--run ID]",
		Short: "Print export lines for the running lab's cluster, for eval \"$(anonlab env)\"",
		Long: `Print POSIX export lines a shell can eval, for the lab that runs now (or
the run given with --run, when several do): KUBECONFIG, APISERVER (the URL),
CACERT, KUBE_APISERVER_MANIFEST (the file to edit: a path on this machine on
the local backend, in the node on kind), NODE (kind: the control-plane
container) and MANIFESTS (a directory with the scenario's manifest files).
Every command the lab shows runs verbatim in such a shell.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			e, err := envEntry(run)
			if err != nil {
				return err
			}
			for _, v := range steps.ShellEnv(e) {
				fmt.Fprintf(streams.Out, "export %s=%s\n", v[0], cluster.ShellQuote(v[1]))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&run, "run", "", "the run's ID (from anonlab status), when several labs run")
	return cmd
}

// envEntry is the entry of the lab run that runs now: the one named, or the
// only one.
func envEntry(id string) (*ledger.Entry, error) {
	entries, err := ledger.List()
	if err != nil {
		return nil, err
	}
	var running []*ledger.Entry
	for _, e := range entries {
		if e.Shell == nil {
			continue
		}
		if id != "" && e.ID == id {
			return e, nil
		}
		if e.OwnerAlive() {
			running = append(running, e)
		}
	}
	switch {
	case id != "":
		return nil, usageError("--run %s: no such lab run with a cluster (see anonlab status)", id)
	case len(running) == 0:
		return nil, &exitError{code: ExitFailed, err: errors.New("no lab runs now: start one (anonlab tui or anonlab run --hands-on), then eval \"$(anonlab env)\"")}
	case len(running) > 1:
		var ids []string
		for _, e := range running {
			ids = append(ids, e.ID)
		}
		return nil, usageError("%d labs run now; pick one with --run: %s", len(running), strings.Join(ids, ", "))
	}
	return running[0], nil
}
