package steps

import (
	"context"

	"github.com/anonlab/anonlab/steps/cluster"
)

// clusterStep creates or destroys the cluster through the backend:
//
//	cluster: create
type clusterStep string

func (c *clusterStep) Validate(v *Validator) error {
	if *c != "create" && *c != "destroy" {
		return v.Errorf("", "%q: want create or destroy", string(*c))
	}
	return nil
}

func (c *clusterStep) Run(ctx context.Context, sc *StepContext) error {
	ctx = cluster.WithProgress(ctx, sc.progress)
	if *c == "destroy" {
		if sc.run.opts.keep {
			return Skip("the cluster is kept (--keep)")
		}
		if !sc.Backend.Info().Disposable {
			// The cluster outlives the run: nothing the run applied may stay.
			sc.run.revoke(ctx)
			sc.run.checkClosed(ctx)
		}
		sc.run.unfollowAudit()
		err := sc.Backend.Destroy(ctx)
		sc.run.clusterUp = false
		sc.clusterState(nil, false)
		return err
	}
	if err := sc.Backend.Create(ctx); err != nil {
		return err
	}
	sc.run.clusterUp = true
	sc.run.followAudit(ctx, sc)
	info := sc.Backend.Info()
	if err := sc.run.recordShell(info); err != nil {
		return err
	}
	if sc.run.opts.keep && info.Disposable {
		// Kept clusters are left by plain `anonlab cleanup`.
		sc.run.entry().Kept = true
		if err := sc.run.saveEntry(); err != nil {
			return err
		}
	}
	sc.Log("kube-apiserver %s serves at %s (%s backend); CA file: %s", info.KubernetesVersion, info.URL, sc.Backend.Name(), info.CAFile)
	sc.clusterState(currentArgs(ctx, sc.Backend), true)
	return nil
}

// currentArgs is kube-apiserver's command line when the backend can tell.
func currentArgs(ctx context.Context, b cluster.Backend) []string {
	if rc, ok := b.(cluster.APIServerReconfigurer); ok {
		if args, err := rc.APIServerArgs(ctx); err == nil {
			return args
		}
	}
	return nil
}
