package ledger

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestListIgnoresUntrustedFiles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ANONLAB_STATE_DIR", dir)
	mine := &Entry{ID: "local-1-1", Created: true, CAFingerprint: "ca", KubeSystemUID: "uid"}
	if err := mine.Save(); err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(dir, "forged.json")
	if err := os.WriteFile(forged, []byte(`{"id":"forged","created":true,"caFingerprint":"x","kubeSystemUID":"y"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(forged, 0o666); err != nil { // others may write it
		t.Fatal(err)
	}
	entries, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].ID != "local-1-1" {
		t.Errorf("List = %+v, want only the 0600 entry", entries)
	}
	if LabCluster("x", "y") {
		t.Error("a world-writable entry made a cluster the lab's")
	}
	if !LabCluster("ca", "uid") || LabCluster("ca", "other") || LabCluster("", "") {
		t.Error("LabCluster does not match on both facts")
	}
}

func TestOwnership(t *testing.T) {
	e := &Entry{ID: "run-a"}
	crb := Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "b"}
	e.Record(crb) // before the apply: no UID yet
	live := crb
	live.UID = "u1"
	cases := []struct {
		name    string
		o       Object
		liveRun string
		want    bool
	}{
		{"pending record, the run's annotation", live, "run-a", true},
		{"pending record, another run's annotation", live, "run-b", false},
		{"pending record, no annotation", live, "", false},
	}
	for _, tc := range cases {
		if got := e.Owns(tc.o, tc.liveRun); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
	e.Record(live) // the apply answered
	if len(e.Objects) != 1 {
		t.Fatalf("Record added a second record of the same object: %+v", e.Objects)
	}
	other := live
	other.UID = "u2" // deleted and re-made by someone else: same name, new UID
	if !e.Owns(live, "") || e.Owns(other, "run-a") {
		t.Error("ownership is not by UID once recorded")
	}
	e.Forget(live)
	if len(e.Objects) != 0 || e.Owns(live, "") {
		t.Errorf("Forget left %+v", e.Objects)
	}
}

func TestListIgnoresOthersFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	dir := t.TempDir()
	t.Setenv("ANONLAB_STATE_DIR", dir)
	theirs := &Entry{ID: "theirs", Created: true, CAFingerprint: "ca", KubeSystemUID: "uid"}
	if err := theirs.Save(); err != nil {
		t.Fatal(err)
	}
	if !LabCluster("ca", "uid") {
		t.Fatal("this user's own entry is not read: the test proves nothing")
	}
	if err := os.Chown(filepath.Join(dir, "theirs.json"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if LabCluster("ca", "uid") {
		t.Error("an entry another user owns made a cluster the lab's")
	}
}

// An entry's owner is alive while its process runs with the recorded
// command line, and not once it has exited (read the same way on Linux and
// macOS).
func TestOwnerAlive(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &Entry{Owner: cmd.Process.Pid, OwnerCmd: "sleep 60"}
	if !e.OwnerAlive() {
		t.Errorf("a running owner (%q) is not alive", cmdline(cmd.Process.Pid))
	}
	if self := cmdline(os.Getpid()); self != strings.Join(os.Args, " ") {
		t.Errorf("cmdline of this test = %q, want %q", self, strings.Join(os.Args, " "))
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if e.OwnerAlive() {
		t.Error("an owner that exited is alive")
	}
}
