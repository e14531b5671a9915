package steps

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applyStep applies manifests with server-side apply, as kubectl apply
// --server-side does. Whatever it applies is deleted again in cleanup, by
// the scenario or else by the engine.
//
//	apply: {manifests: [my-cluster-role.yaml]}
type applyStep struct {
	Manifests []string `yaml:"manifests"`
}

func (a *applyStep) Validate(v *Validator) error { return validateManifests(v, a.Manifests) }

func (a *applyStep) Run(ctx context.Context, sc *StepContext) error {
	objs, err := manifestObjects(sc.run.scenario, a.Manifests)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if opensToAnonymous(obj) {
			if err := sc.mayOpen("bind a role to anonymous users with " + keyOf(obj).String()); err != nil {
				return err
			}
		}
	}
	sc.Command(fmt.Sprintf("%s apply --server-side -f %s", sc.kubectl(), strings.Join(a.Manifests, " -f ")))
	for _, obj := range objs {
		rc, err := sc.resourceClient(obj)
		if err != nil {
			return err
		}
		key := keyOf(obj)
		// Recorded before the call: a request that times out may still have
		// been applied, and cleanup must revoke it either way.
		sc.run.applied[key] = appliedObject{obj: obj}
		if _, err := rc.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "anonlab", Force: true}); err != nil {
			return fmt.Errorf("apply %s: %w", key, err)
		}
		sc.Log("applied %s", key)
	}
	return nil
}
