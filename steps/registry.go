package steps

import (
	"maps"
	"slices"
)

// registry lists every step kind: the key that holds a step's parameters in
// YAML, and a constructor for them. A new kind is one file and one line here.
var registry = map[string]func() Action{
	"cluster":             func() Action { return new(clusterStep) },
	"serviceAccountToken": func() Action { return new(tokenStep) },
	"request":             func() Action { return new(requestStep) },
	"apply":               func() Action { return new(applyStep) },
	"delete":              func() Action { return new(deleteStep) },
	"apiserverFlags":      func() Action { return new(flagsStep) },
	"cisAudit":            func() Action { return new(cisStep) },
	"apiserverPod":        func() Action { return new(podStep) },
	"anonymousExposure":   func() Action { return new(exposureStep) },
}

// KindNames lists the step kinds, sorted.
func KindNames() []string { return slices.Sorted(maps.Keys(registry)) }
