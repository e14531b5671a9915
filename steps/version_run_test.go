package steps_test

import (
	"context"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster/clustertest"
)

// A step for other versions, and one whose expectations hold for none of
// them, are skipped, saying why, and the steps after a change skipped so
// still run; the expectation for the cluster's version is the one checked.
func TestRunPerVersion(t *testing.T) {
	sc := parse(t, `name: x
title: X
steps:
  - id: create-cluster
    title: Create
    cluster: create
  - id: change-new-only
    title: Change new only
    kubernetes: ">=1.24"
    apiserverFlags: {set: [--anonymous-auth=false]}
  - id: new-only
    title: New only
    kubernetes: ">=1.24"
    request: {as: anonymous, path: /api}
  - id: old-only
    title: Old only
    kubernetes: "<1.24"
    request: {as: anonymous, path: /api}
    expect: {status: 403}
  - id: per-version
    title: Per version
    request: {as: anonymous, path: /api}
    expect:
      - kubernetes: ">=1.24"
        status: 200
      - status: 403
  - id: none-holds
    title: None holds
    request: {as: anonymous, path: /api}
    expect: {kubernetes: "~1.31", status: 401}
cleanup:
  - id: destroy
    title: Destroy
    cluster: destroy
`)
	b := newBackend(t, clustertest.KubernetesVersion("v1.20.2"))
	var rec recorder
	sum := steps.Run(context.Background(), sc, b, &rec)
	wantOutcomes(t, rec.events, []outcome{
		{"create-cluster", false, steps.Passed},
		{"change-new-only", false, steps.Skipped},
		{"new-only", false, steps.Skipped},
		{"old-only", false, steps.Passed},
		{"per-version", false, steps.Passed},
		{"none-holds", false, steps.Skipped},
		{"destroy", true, steps.Passed},
	})
	wantSummary(t, sum, 4, 0, 3)
	for id, want := range map[string]string{
		"new-only":   "the step is for Kubernetes >=1.24; this cluster runs v1.20.2",
		"none-holds": "the step's expectations are for Kubernetes ~1.31; this cluster runs v1.20.2",
	} {
		if got := finishedStep(t, rec.events, id).Error; got != want {
			t.Errorf("step %s skipped saying %q, want %q", id, got, want)
		}
	}
	checks := checksOf(rec.events, "per-version")
	if len(checks) != 1 || !strings.Contains(checks[0].Want, "403") {
		t.Errorf("per-version checked %+v, want one check of status 403", checks)
	}
}
