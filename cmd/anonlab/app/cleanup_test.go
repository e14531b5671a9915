package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// TestCleanupLeavesKeptRuns: plain cleanup removes what ended runs left,
// but not a kept cluster nor a run still going; the kept one goes by its
// ID, and --all removes the rest (what --help and the README promise).
func TestCleanupLeavesKeptRuns(t *testing.T) {
	state := t.TempDir()
	t.Setenv("ANONLAB_STATE_DIR", state)
	entry := func(id string, kept, alive bool) (*ledger.Entry, string) {
		dir, err := os.MkdirTemp("", "anonlab-cleanup-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		e := ledger.NewEntry("local") // owned by this test process: alive
		e.ID, e.Dir, e.Kept = id, dir, kept
		if !alive {
			e.OwnerCmd = "a process that ended"
		}
		if err := e.Save(); err != nil {
			t.Fatal(err)
		}
		return e, dir
	}
	_, deadDir := entry("dead", false, false)
	_, keptDir := entry("kept", true, false)
	_, aliveDir := entry("alive", false, true)
	exists := func(dir string) bool { _, err := os.Stat(dir); return err == nil }

	code, out, errOut := run(t, "status")
	for _, want := range []string{"left behind: dead", "kept: kept", "in use: alive"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("status lacks %q (exit %d):\n%s%s", want, code, out, errOut)
		}
	}
	code, out, errOut = run(t, "cleanup")
	if code != ExitOK || !strings.Contains(out, "1 removed") || exists(deadDir) || !exists(keptDir) || !exists(aliveDir) {
		t.Errorf("plain cleanup: exit %d, dead dir %v, kept dir %v, alive dir %v:\n%s%s", code, exists(deadDir), exists(keptDir), exists(aliveDir), out, errOut)
	}
	code, out, errOut = run(t, "cleanup", "kept")
	if code != ExitOK || exists(keptDir) || !exists(aliveDir) {
		t.Errorf("cleanup kept: exit %d, kept dir %v, alive dir %v:\n%s%s", code, exists(keptDir), exists(aliveDir), out, errOut)
	}
	if code, _, errOut = run(t, "cleanup", "no-such-run"); code != ExitBadUsage || !strings.Contains(errOut, "no lab run") {
		t.Errorf("cleanup of an unknown run: exit %d, %q", code, errOut)
	}
	code, out, errOut = run(t, "cleanup", "--all")
	if code != ExitOK || exists(aliveDir) {
		t.Errorf("cleanup --all: exit %d, alive dir %v:\n%s%s", code, exists(aliveDir), out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "*.json")); len(left) > 0 {
		t.Errorf("entries left: %v", left)
	}
}
