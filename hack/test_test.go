// Package hack holds the scripts make runs; this test holds hack/test.sh
// to what the Makefile says of it.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stubMake stands in for make: set-up targets print a line, test targets
// print go test's summary lines; the target named in $STUB_FAIL fails.
const stubMake = `#!/usr/bin/env bash
target=${@: -1}
echo "stub $target" >> "$STUB_CALLS"
case $target in
test-kind) printf 'ok  \tgithub.com/anonlab/anonlab/steps/cluster/kind\t12.5s\n' ;;
test-local) printf 'ok  \tgithub.com/anonlab/anonlab/steps\t3.2s\nFAIL\tgithub.com/anonlab/anonlab/e2e\t99.0s\n' ;;
esac
[ "$target" != "$STUB_FAIL" ]
`

func runTestScript(t *testing.T, fail string) (string, []string, error) {
	t.Helper()
	dir := t.TempDir()
	stub := filepath.Join(dir, "make")
	if err := os.WriteFile(stub, []byte(stubMake), 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	cmd := exec.Command("bash", "test.sh")
	cmd.Env = append(os.Environ(), "MAKE="+stub, "STUB_FAIL="+fail, "STUB_CALLS="+calls)
	out, err := cmd.CombinedOutput()
	data, _ := os.ReadFile(calls)
	return string(out), strings.Fields(strings.ReplaceAll(string(data), "stub ", "")), err
}

// row matches a table row: the phase, its seconds, its result.
func row(name, result string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+\d+\s+` + regexp.QuoteMeta(result))
}

// TestTimingTable: every phase runs and gets a row, each test package a row
// of its own; a failing test phase does not stop the later ones, and the
// run exits 1.
func TestTimingTable(t *testing.T) {
	out, calls, err := runTestScript(t, "e2e-kind")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1\n%s", err, out)
	}
	if want := "build binaries cross docker kind-node-image test-kind e2e-kind test-local"; strings.Join(calls, " ") != want {
		t.Errorf("phases run: %v, want %s", calls, want)
	}
	table := out[strings.LastIndex(out, "make test: timings"):]
	for _, r := range []*regexp.Regexp{
		row("deps", "ok"), row("binaries", "ok"), row("node-image", "ok"), row("e2e-kind", "FAIL (exit 1)"),
		row("steps/cluster/kind", "ok"), row("steps", "ok"), row("e2e", "FAIL"), row("total", "FAIL"),
	} {
		if !r.MatchString(table) {
			t.Errorf("the table lacks a row matching %s:\n%s", r, table)
		}
	}
}

// TestTimingTableSetupFails: a failed set-up phase stops the run, and the
// table is still printed.
func TestTimingTableSetupFails(t *testing.T) {
	out, calls, err := runTestScript(t, "binaries")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1\n%s", err, out)
	}
	if want := "build binaries"; strings.Join(calls, " ") != want {
		t.Errorf("phases run: %v, want %s", calls, want)
	}
	if !row("binaries", "FAIL (exit 1)").MatchString(out) || !row("total", "FAIL").MatchString(out) {
		t.Errorf("no table with the failed phase:\n%s", out)
	}
}
