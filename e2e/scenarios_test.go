package e2e

import (
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/anonlab/anonlab/e2e/lab"
	"github.com/anonlab/anonlab/steps"
)

// TestScenarios runs every embedded scenario (or the --scenario-file ones)
// on the suite's cluster, one after the other: they share it.
func TestScenarios(t *testing.T) {
	needCluster(t)
	scenarios, err := load()
	if err != nil {
		t.Fatal(err)
	}
	feats := make([]types.Feature, 0, len(scenarios))
	for _, sc := range scenarios {
		feats = append(feats, lab.Feature(sc, clusterName).WithLabel("backend", *backend).Feature())
	}
	testenv.Test(t, feats...)
}

func load() ([]*steps.Scenario, error) {
	if len(scenarioFiles) == 0 {
		return steps.List()
	}
	var out []*steps.Scenario
	for _, f := range scenarioFiles {
		sc, err := steps.LoadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}
