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
// test-kind and e2e-kind each wait (up to 10 s) for the other to have
// started, and fail when it has not: they must run side by side.
const stubMake = `#!/usr/bin/env bash
target=${@: -1}
echo "stub $target" >> "$STUB_CALLS"
touch "$STUB_CALLS.$target"
other() {
	for _ in $(seq 100); do [ -e "$STUB_CALLS.$1" ] && return 0; sleep 0.1; done
	echo "$target: $1 did not start beside it"; exit 3
}
case $target in
test-kind) other e2e-kind; printf 'ok  \tgithub.com/anonlab/anonlab/steps/cluster/kind\t12.5s\n' ;;
e2e-kind) other test-kind ;;
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
// of its own; the two kind suites run side by side; a failing test phase
// does not stop the later ones, and the run exits 1.
func TestTimingTable(t *testing.T) {
	out, calls, err := runTestScript(t, "e2e-kind")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1\n%s", err, out)
	}
	// The two side-by-side phases start in either order.
	if len(calls) == 8 && calls[5] == "e2e-kind" {
		calls[5], calls[6] = calls[6], calls[5]
	}
	if want := "build binaries cross docker kind-node-image test-kind e2e-kind test-local"; strings.Join(calls, " ") != want {
		t.Errorf("phases run: %v, want %s", calls, want)
	}
	if strings.Contains(out, "did not start beside it") {
		t.Errorf("test-kind and e2e-kind did not run side by side:\n%s", out)
	}
	if !strings.Contains(out, "[test-kind] ok  \tgithub.com/anonlab/anonlab/steps/cluster/kind") {
		t.Errorf("test-kind's output is not shown with its [test-kind] prefix:\n%s", out)
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
