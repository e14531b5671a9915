package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/anonlab/anonlab/steps"

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
		Use:     "cleanup [RUN...]",
		Aliases: []string{"prune"},
		Short:   "Remove what lab runs left behind: processes, directories, lab clusters, and the objects they applied",
		Long: `Remove the leftovers of lab runs that could not clean up (killed with
SIGKILL, a machine that lost power). Each run records what it creates in a
state file; cleanup kills a recorded process only when its pid still runs
the recorded command line, never by name, and deletes only the objects a
run recorded that it applied, on the cluster it recorded (by its CA and
kube-system UID).

Plain cleanup removes what ended runs left, but leaves runs still going and
clusters kept with --keep; name a run (its ID, from anonlab status) to
remove that one, or give --all to remove everything, kept clusters and
running runs included.`,
		RunE: func(c *cobra.Command, ids []string) error {
			if all && len(ids) > 0 {
				return usageError("give run IDs or --all, not both")
			}
			entries, err := cleanupTargets(ids)
			if err != nil {
				return usageError("%v", err)
			}
			var errs []error
			removed := 0
			for _, e := range entries {
				named := len(ids) > 0
				switch {
				case e.OwnerAlive() && !all:
					fmt.Fprintf(streams.Out, "left alone (its run is still going, pid %d; --all removes it): %s\n", e.Owner, describeEntry(e))
					continue
				case e.Kept && !all && !named:
					fmt.Fprintf(streams.Out, "left alone (kept with --keep; anonlab cleanup %s or --all removes it): %s\n", e.ID, describeEntry(e))
					continue
				}
				if err := removeEntry(c.Context(), e, streams); err != nil {
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
	cmd.Flags().BoolVar(&all, "all", false, "also remove clusters kept with --keep and what running runs hold")
	return cmd
}

// cleanupTargets are the entries named by ids, or every entry.
func cleanupTargets(ids []string) ([]*ledger.Entry, error) {
	if len(ids) == 0 {
		return ledger.List()
	}
	var out []*ledger.Entry
	for _, id := range ids {
		e, err := ledger.Find(id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// removeEntry removes what the entry records: the objects the run applied
// to a cluster that stays, then its kind cluster, processes and directory.
func removeEntry(ctx context.Context, e *ledger.Entry, streams IOStreams) error {
	if len(e.Objects) > 0 && !e.Created {
		if err := revokeEntry(ctx, e, streams); err != nil {
			return fmt.Errorf("revoke what the run applied (kept its record for another try): %w", err)
		}
	}
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

// revokeEntry deletes the objects a run applied to a cluster it did not
// create, through the kubeconfig it recorded.
func revokeEntry(ctx context.Context, e *ledger.Entry, streams IOStreams) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = e.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: e.Context}).ClientConfig()
	if err != nil {
		return fmt.Errorf("read the run's kubeconfig %s: %w", e.Kubeconfig, err)
	}
	return steps.Revoke(ctx, cfg, e, func(format string, args ...any) {
		fmt.Fprintf(streams.Out, "%s: %s\n", e.ID, fmt.Sprintf(format, args...))
	})
}

func describeEntry(e *ledger.Entry) string {
	var parts []string
	parts = append(parts, e.ID, e.Backend, "started "+e.Started.Format(time.DateTime))
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
	if len(e.Objects) > 0 {
		var objs []string
		for _, o := range e.Objects {
			objs = append(objs, o.String())
		}
		parts = append(parts, "applied "+strings.Join(objs, ", "))
	}
	state := "left behind"
	switch {
	case e.OwnerAlive():
		state = "in use"
	case e.Kept:
		state = "kept"
	}
	return state + ": " + strings.Join(parts, ", ")
}
