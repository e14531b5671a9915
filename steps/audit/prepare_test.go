package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, log := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit", "audit.log")
	if err := Prepare(policy, log); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{policy: 0o600, filepath.Dir(log): 0o700 | os.ModeDir, log: 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want mode %v", name, fi.Mode(), err, want)
		}
	}
	if data, err := os.ReadFile(policy); err != nil || !bytes.Contains(data, []byte("kind: Policy")) || !bytes.Contains(data, []byte("level: Metadata")) {
		t.Errorf("the policy written is %q, %v", data, err)
	}
}
