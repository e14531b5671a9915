package steps

import (
	"context"
	"strings"
)

// deleteStep deletes the objects of manifests that a lab run applied;
// objects already gone are fine, so it is safe as a cleanup step, and an
// object of the same name that no lab run applied is left alone.
//
//	delete: {manifests: [my-cluster-role-binding.yaml]}
type deleteStep struct {
	Manifests []string `yaml:"manifests"`
}

func (d *deleteStep) Validate(v *Validator) error { return validateManifests(v, d.Manifests) }

func (*deleteStep) changesCluster() bool { return true }

func (d *deleteStep) Run(ctx context.Context, sc *StepContext) error {
	objs, err := manifestObjects(sc.run.scenario, d.Manifests)
	if err != nil {
		return err
	}
	if err := sc.mayWrite("delete "+strings.Join(d.Manifests, ", "), nil); err != nil {
		return err
	}
	sc.Command(d.shellCommand())
	return sc.deleteOwned(ctx, objs)
}
