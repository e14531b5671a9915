package audit

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/anonlab/anonlab/manifests"
)

// Prepare writes the lab's audit policy (manifests/audit-policy.yaml:
// Metadata level, so no body and no token is ever logged) to policy, and
// creates log empty, 0600, in a 0700 directory: made by the lab, the log
// belongs to the lab's user even where root writes it (a kind node), and
// it can be followed before kube-apiserver writes to it.
func Prepare(policy, log string) error {
	data, err := manifests.FS.ReadFile("audit-policy.yaml")
	if err != nil {
		return fmt.Errorf("read the audit policy: %w", err)
	}
	if err := os.WriteFile(policy, data, 0o600); err != nil {
		return fmt.Errorf("write the audit policy: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(log), 0o700); err != nil {
		return fmt.Errorf("create the audit log's directory: %w", err)
	}
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create the audit log: %w", err)
	}
	return f.Close()
}
