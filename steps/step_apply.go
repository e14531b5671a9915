package steps

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applyStep applies manifests with server-side apply, as kubectl apply
// --server-side does. Each object is recorded in the run's ledger before it
// is applied, and deleted again in cleanup, by the scenario or else by the
// engine. An object of the same name that no lab run applied is never
// changed.
//
//	apply: {manifests: [my-cluster-role.yaml]}
type applyStep struct {
	Manifests []string `yaml:"manifests"`
}

func (a *applyStep) Validate(v *Validator) error { return validateManifests(v, a.Manifests) }

func (*applyStep) changesCluster() bool { return true }

func (a *applyStep) Run(ctx context.Context, sc *StepContext) error {
	objs, err := manifestObjects(sc.run.scenario, a.Manifests)
	if err != nil {
		return err
	}
	var opens []string
	if !sc.Backend.Info().CreatedByLab {
		// Read against the cluster's RBAC before anything is written
		// (docs/architecture.md, Safety 4).
		if opens, err = sc.guard(ctx, objs); err != nil {
			return err
		}
	}
	if err := sc.mayWrite("apply "+strings.Join(a.Manifests, ", "), opens); err != nil {
		return err
	}
	sc.Command(a.shellCommand())
	attrs := accessAttrs(objs)
	before := sc.anonymousAccess(ctx, attrs)
	for _, obj := range objs {
		rc, err := sc.resourceClient(obj)
		if err != nil {
			return err
		}
		key := keyOf(obj)
		live, err := rc.Get(ctx, obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		case !sc.run.owns(live):
			return fmt.Errorf("refusing to apply %s: an object of that name already exists and no lab run applied it (it may be someone's own); the lab changes and deletes only what it applied. Rename it in the manifest, or run on a lab cluster", key)
		}
		rec := recordOf(obj)
		if live != nil && err == nil {
			rec.UID = string(live.GetUID())
		}
		// Recorded before the call: a request that times out may still have
		// been applied, and cleanup must revoke it either way.
		if err := sc.run.record(rec); err != nil {
			return err
		}
		sc.run.stamp(obj)
		out, err := rc.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "anonlab", Force: true})
		if err != nil {
			return fmt.Errorf("apply %s: %w", key, err)
		}
		if err := sc.run.record(recordOf(out)); err != nil {
			return err
		}
		sc.Log("applied %s", key)
	}
	sc.recordOpened(before, sc.anonymousAccess(ctx, attrs))
	return nil
}
