package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/anonlab/anonlab/e2e/lab"
	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/existing"
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

// TestScenariosHandsOn runs every scenario again in hands-on mode on the
// same cluster: an attendee in bash types each command the lab shows, as
// shown, and each step passes on what the lab observes.
func TestScenariosHandsOn(t *testing.T) {
	needCluster(t)
	if *backend == existing.Name {
		t.Skip("hands-on mode needs a cluster the lab creates; --backend existing is read-only")
	}
	scenarios, err := load()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "anonlab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/anonlab/anonlab/cmd/anonlab").CombinedOutput(); err != nil {
		t.Fatalf("build anonlab for the attendee's shell: %v\n%s", err, out)
	}
	feats := make([]types.Feature, 0, len(scenarios))
	for _, sc := range scenarios {
		feats = append(feats, lab.HandsOnFeature(sc, clusterName, bin).WithLabel("backend", *backend).Feature())
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
