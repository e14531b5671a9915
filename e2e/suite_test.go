package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/existing"
)

// TestSuite runs this suite in a child go test on a scenario whose one step
// expects the wrong status (testdata/wrong-expectation.yaml), with
// e2e-framework's flags, and checks which of its assessments passed, failed
// or were skipped, and what they said. A child process, because failing is
// the expected outcome of some cases; it runs on this suite's cluster
// through the existing backend.
func TestSuite(t *testing.T) {
	needCluster(t)
	cfg := testenv.EnvConf()
	if cfg.DryRunMode() {
		t.Skip("--dry-run: no cluster to run the scenario on")
	}
	// Results and output are keyed by assessment; "" is the feature.
	cases := []struct {
		name       string
		flags      []string
		want       map[string]string // pass, fail or skip
		wantOutput map[string]string
	}{{
		name: "a wrong expectation fails its step only",
		want: map[string]string{"": "fail", "create-cluster": "pass", "anonymous-api-wrong": "fail", "anonymous-api": "pass"},
		wantOutput: map[string]string{
			"anonymous-api-wrong": "step anonymous-api-wrong: status: want 401, got 403",
			"":                    "--- cleanup destroy-cluster: skipped",
		},
	}, {
		name:  "--assess runs the steps before the one it selects",
		flags: []string{"--assess", "^anonymous-api$"},
		want:  map[string]string{"": "pass", "create-cluster": "skip", "anonymous-api-wrong": "skip", "anonymous-api": "pass"},
		wantOutput: map[string]string{
			"anonymous-api": "[1/3] Create a cluster",
		},
	}, {
		name:  "--fail-fast stops at the failed step and still cleans up",
		flags: []string{"--fail-fast"},
		want:  map[string]string{"": "fail", "create-cluster": "pass", "anonymous-api-wrong": "fail"},
		wantOutput: map[string]string{
			"": "--- cleanup destroy-cluster: skipped",
		},
	}, {
		name:  "--skip-labels skips the feature",
		flags: []string{"--skip-labels", "scenario=wrong-expectation"},
		want:  map[string]string{"": "skip"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"test", "-count=1", "-timeout=5m", "-json", "-run", "^TestScenarios$", ".", "-args",
				"--scenario-file", "testdata/wrong-expectation.yaml",
				"--backend", existing.Name, "--kubeconfig=" + cfg.KubeconfigFile(), "--context=" + cfg.KubeContext()},
				tc.flags...)
			cmd := exec.CommandContext(t.Context(), "go", args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			code := 0
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			wantCode := 0
			if slices.Contains(slices.Collect(maps.Values(tc.want)), "fail") {
				wantCode = 1
			}
			if code != wantCode {
				t.Fatalf("go %s: want exit status %d, got %d\n%s%s", strings.Join(args, " "), wantCode, code, stderr.String(), out)
			}
			results, output, err := parseTestJSON(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			const feature = "TestScenarios/wrong-expectation"
			for name, got := range results {
				if step, ok := strings.CutPrefix(name, feature+"/"); ok && tc.want[step] == "" {
					t.Errorf("assessment %s: want it not run, got %s", step, got)
				}
			}
			for step, want := range tc.want {
				if got := results[strings.TrimSuffix(feature+"/"+step, "/")]; got != want {
					t.Errorf("assessment %q: want %s, got %q", step, want, got)
				}
			}
			for step, want := range tc.wantOutput {
				if got := output[strings.TrimSuffix(feature+"/"+step, "/")]; !strings.Contains(got, want) {
					t.Errorf("the output of %q does not say %q:\n%s", step, want, got)
				}
			}
		})
	}
}

// parseTestJSON reads go test -json output: each test's result (pass,
// fail, skip) and its output.
func parseTestJSON(r io.Reader) (results, output map[string]string, err error) {
	results, output = map[string]string{}, map[string]string{}
	dec := json.NewDecoder(r)
	for {
		var ev struct{ Action, Test, Output string }
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			return results, output, nil
		} else if err != nil {
			return nil, nil, err
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			results[ev.Test] = ev.Action
		case "output":
			output[ev.Test] += ev.Output
		}
	}
}
