package steps

import (
	"context"
	"fmt"
	"strings"
)

// deleteStep deletes the objects of manifests; objects already gone are
// fine, so it is safe as a cleanup step.
//
//	delete: {manifests: [my-cluster-role-binding.yaml]}
type deleteStep struct {
	Manifests []string `yaml:"manifests"`
}

func (d *deleteStep) Validate(v *Validator) error { return validateManifests(v, d.Manifests) }

func (d *deleteStep) Run(ctx context.Context, sc *StepContext) error {
	objs, err := manifestObjects(sc.run.scenario, d.Manifests)
	if err != nil {
		return err
	}
	sc.Command(fmt.Sprintf("%s delete --ignore-not-found -f %s", sc.kubectl(), strings.Join(d.Manifests, " -f ")))
	set := map[objectKey]appliedObject{}
	for _, obj := range objs {
		set[keyOf(obj)] = appliedObject{obj: obj}
	}
	return sc.deleteObjects(ctx, set)
}
