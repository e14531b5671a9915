package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anonlab/anonlab/steps/cluster/kind"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

func newStatus(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List what lab runs created and left: processes, directories, clusters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			entries, err := ledger.List()
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				fmt.Fprintln(streams.Out, "nothing: no lab run has left anything")
				return nil
			}
			for _, e := range entries {
				fmt.Fprintln(streams.Out, describeEntry(e))
			}
			return nil
		},
	}
}

func newCleanup(streams IOStreams) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "cleanup",
		Aliases: []string{"prune"},
		Short:   "Remove what killed lab runs left behind (processes by pid and command line, their directories, lab clusters)",
		Long: `Remove the leftovers of lab runs that could not clean up (killed with
SIGKILL, a machine that lost power). Each run records what it creates in a
state file; cleanup kills a recorded process only when its pid still runs
the recorded command line, never by name. Runs still in progress are left
alone unless --all is given (which also removes clusters kept with --keep).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			entries, err := ledger.List()
			if err != nil {
				return err
			}
			var errs []error
			removed := 0
			for _, e := range entries {
				if e.OwnerAlive() && !all {
					fmt.Fprintf(streams.Out, "left alone (its run is still going, pid %d): %s\n", e.Owner, describeEntry(e))
					continue
				}
				if err := removeEntry(c.Context(), e); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", e.ID, err))
					continue
				}
				removed++
				fmt.Fprintf(streams.Out, "removed: %s\n", describeEntry(e))
			}
			fmt.Fprintf(streams.Out, "%d removed\n", removed)
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove what running or --keep runs hold")
	return cmd
}

func removeEntry(ctx context.Context, e *ledger.Entry) error {
	if e.KindCluster != "" {
		if err := kind.DeleteCluster(ctx, e.KindCluster); err != nil {
			return err
		}
	}
	if err := e.KillProcesses(); err != nil {
		return err
	}
	if err := e.RemoveDir(); err != nil {
		return err
	}
	return e.Delete()
}

func describeEntry(e *ledger.Entry) string {
	var parts []string
	parts = append(parts, e.Backend, "started "+e.Started.Format(time.DateTime))
	if e.URL != "" {
		parts = append(parts, e.URL)
	}
	if e.KindCluster != "" {
		parts = append(parts, "kind cluster "+e.KindCluster)
	}
	if alive := e.Alive(); len(alive) > 0 {
		var pids []string
		for _, p := range alive {
			pids = append(pids, fmt.Sprint(p.Pid))
		}
		parts = append(parts, "processes "+strings.Join(pids, ","))
	}
	if e.Dir != "" {
		parts = append(parts, e.Dir)
	}
	state := "left behind"
	if e.OwnerAlive() {
		state = "in use"
	}
	return state + ": " + strings.Join(parts, ", ")
}
