package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/existing"
)

// TestWrongExpectationFailsOnlyItsStep runs this suite in a child go test on
// a scenario with one wrong expectation, and checks that the assessment of
// that step, and only that one, failed, saying what was wanted and got. A
// child process, because here that failure is the expected outcome; it runs
// on this suite's cluster through the existing backend.
func TestWrongExpectationFailsOnlyItsStep(t *testing.T) {
	needCluster(t)
	cfg := testenv.EnvConf()
	if cfg.DryRunMode() {
		t.Skip("--dry-run: no cluster to run the scenario on")
	}
	cmd := exec.CommandContext(t.Context(), "go", "test", "-count=1", "-json", "-run", "^TestScenarios$", ".", "-args",
		"--scenario-file", "testdata/wrong-expectation.yaml",
		"--backend", existing.Name, "--kubeconfig="+cfg.KubeconfigFile(), "--context="+cfg.KubeContext())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("go test of the wrong scenario: want exit status 1 (a test failed), got %v\n%s%s", err, stderr.String(), out)
	}
	results, output, err := parseTestJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}

	const feature = "TestScenarios/wrong-expectation/"
	want := map[string]string{
		feature + "create-cluster":      "pass",
		feature + "anonymous-api-wrong": "fail",
		feature + "anonymous-api":       "pass",
	}
	for name, got := range results {
		if strings.HasPrefix(name, feature) && want[name] == "" {
			t.Errorf("unexpected assessment %s (%s)", name, got)
		}
	}
	for name, w := range want {
		if got := results[name]; got != w {
			t.Errorf("assessment %s: want %s, got %q", name, w, got)
		}
	}
	msg := output[feature+"anonymous-api-wrong"]
	if wantMsg := "step anonymous-api-wrong: status: want 401, got 403"; !strings.Contains(msg, wantMsg) {
		t.Errorf("the failed assessment's output does not say %q:\n%s", wantMsg, msg)
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
