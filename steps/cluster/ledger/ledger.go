// Package ledger records what each run creates (processes, directories,
// kind clusters, the objects it applied) and the facts that identify its
// cluster, in a state file of its own, so that `anonlab cleanup` can remove
// the leftovers of a run that was killed before it could clean up, and so
// that ownership is a recorded fact, never inferred from a name or a URL
// (docs/architecture.md, Safety).
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// Entry is what one backend instance of one run created. Record, Forget,
// SetProcesses and Save may be called from different goroutines (the
// engine records objects while the local backend's kubelet records the
// kube-apiserver it restarted).
type Entry struct {
	mu sync.Mutex
	// ID names the entry's file.
	ID string `json:"id"`
	// Owner is the pid of the anonlab process that created it.
	Owner     int       `json:"owner"`
	OwnerCmd  string    `json:"ownerCmdline"`
	Started   time.Time `json:"started"`
	Backend   string    `json:"backend"`
	URL       string    `json:"url,omitempty"`
	Dir       string    `json:"dir,omitempty"`
	Processes []Process `json:"processes,omitempty"`
	// KindCluster is the name of a kind cluster the run created.
	KindCluster string `json:"kindCluster,omitempty"`
	// CAFingerprint and KubeSystemUID identify the cluster (cluster.Identity):
	// recorded when the lab created it, or for an existing cluster when the
	// run first wrote to it.
	CAFingerprint string `json:"caFingerprint,omitempty"`
	KubeSystemUID string `json:"kubeSystemUID,omitempty"`
	// Created is set when the run created the cluster itself.
	Created bool `json:"created,omitempty"`
	// Kept is set when the run was asked to keep its cluster (--keep):
	// plain `anonlab cleanup` leaves it; --all or its ID removes it.
	Kept bool `json:"kept,omitempty"`
	// Kubeconfig and Context reach the cluster again (an existing cluster's
	// leftover objects are revoked through them).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	// Shell is what `anonlab env` exports for the run's cluster: the
	// variables every command the lab shows is written with.
	Shell *Shell `json:"shell,omitempty"`
	// Objects are what the run applied, each recorded before the apply.
	Objects []Object `json:"objects,omitempty"`
}

// Shell is where a person's shell finds the run's cluster.
type Shell struct {
	CAFile            string `json:"caFile"`
	APIServerManifest string `json:"apiserverManifest,omitempty"`
	Node              string `json:"node,omitempty"`
	// Manifests is a directory holding the scenario's manifest files.
	Manifests string `json:"manifests"`
}

// Object is an object a run applied. UID is empty while the apply has not
// answered: such an object is only the run's if it carries the run's
// annotation (RunAnnotation) with the entry's ID.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// RunAnnotation is set on every object the lab applies, to the entry's ID.
const RunAnnotation = "anonlab.dev/run"

// Same reports whether o and p name the same object.
func (o Object) Same(p Object) bool {
	return o.APIVersion == p.APIVersion && o.Kind == p.Kind && o.Namespace == p.Namespace && o.Name == p.Name
}

func (o Object) String() string {
	if o.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
	}
	return o.Kind + " " + o.Name
}

// Record adds o, or updates the record of the same object (Save writes it).
func (e *Entry) Record(o Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.Objects {
		if e.Objects[i].Same(o) {
			e.Objects[i] = o
			return
		}
	}
	e.Objects = append(e.Objects, o)
}

// Forget drops the record of o (Save writes it).
func (e *Entry) Forget(o Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Objects = slices.DeleteFunc(e.Objects, o.Same)
}

// Owns reports whether the entry records that its run applied the live
// object o: by UID, or, while the apply had not answered, by the run
// annotation the apply set.
func (e *Entry) Owns(o Object, liveRun string) bool {
	for _, r := range e.Objects {
		if r.Same(o) && (r.UID != "" && r.UID == o.UID || r.UID == "" && liveRun == e.ID) {
			return true
		}
	}
	return false
}

// Identifies reports whether the entry's cluster has this identity: both
// facts recorded and equal.
func (e *Entry) Identifies(caFingerprint, kubeSystemUID string) bool {
	return e.CAFingerprint != "" && e.KubeSystemUID != "" && e.CAFingerprint == caFingerprint && e.KubeSystemUID == kubeSystemUID
}

// Process is a child process, known by pid and exact command line: a
// leftover is only killed when both still match.
type Process struct {
	Pid     int    `json:"pid"`
	Cmdline string `json:"cmdline"`
}

// Dir is where entries are kept: $ANONLAB_STATE_DIR, else
// $XDG_STATE_HOME/anonlab, else ~/.local/state/anonlab.
func Dir() (string, error) {
	if d := os.Getenv("ANONLAB_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "anonlab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "anonlab"), nil
}

// NewEntry starts an entry owned by this process.
func NewEntry(backend string) *Entry {
	now := time.Now()
	return &Entry{
		ID:       fmt.Sprintf("%s-%d-%d", backend, os.Getpid(), now.UnixNano()),
		Owner:    os.Getpid(),
		OwnerCmd: cmdline(os.Getpid()),
		Started:  now,
		Backend:  backend,
	}
}

// SetProcesses records the children that run now, replacing the list.
func (e *Entry) SetProcesses(pids ...int) {
	procs := make([]Process, 0, len(pids))
	for _, pid := range pids {
		procs = append(procs, Process{Pid: pid, Cmdline: cmdline(pid)})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Processes = procs
}

// Save writes the entry (0600, in a 0700 directory).
func (e *Entry) Save() error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// Held until the rename: concurrent saves share the temporary file.
	e.mu.Lock()
	defer e.mu.Unlock()
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+e.ID+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write state entry: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, e.ID+".json"))
}

// Delete removes the entry's file.
func (e *Entry) Delete() error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(dir, e.ID+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// List reads every entry. Files another user owns, or that others may
// write, are not trusted and are left out: an entry decides what the lab
// may delete.
func List() ([]*Entry, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, f := range files {
		if !trusted(f) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		e := &Entry{}
		if err := json.Unmarshal(data, e); err != nil {
			return nil, fmt.Errorf("state entry %s: %w", f, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Find returns the entry with this ID.
func Find(id string) (*Entry, error) {
	entries, err := List()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no lab run %q (see anonlab status)", id)
}

// LabCluster reports whether a run recorded that it created the cluster
// with this identity.
func LabCluster(caFingerprint, kubeSystemUID string) bool {
	entries, err := List()
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Created && e.Identifies(caFingerprint, kubeSystemUID) {
			return true
		}
	}
	return false
}

// Owned reports whether a recorded run applied the live object o (its UID
// set) to the cluster with this identity.
func Owned(caFingerprint, kubeSystemUID string, o Object, liveRun string) bool {
	entries, err := List()
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Identifies(caFingerprint, kubeSystemUID) && e.Owns(o, liveRun) {
			return true
		}
	}
	return false
}

// OwnerAlive reports whether the run that made the entry still runs.
func (e *Entry) OwnerAlive() bool {
	return e.OwnerCmd != "" && cmdline(e.Owner) == e.OwnerCmd
}

// Alive lists the recorded processes that still run with the same command
// line (a reused pid is not one of ours).
func (e *Entry) Alive() []Process {
	var out []Process
	for _, p := range e.Processes {
		if p.Cmdline != "" && cmdline(p.Pid) == p.Cmdline {
			out = append(out, p)
		}
	}
	return out
}

// KillProcesses kills the recorded processes that are still ours and waits
// until they are gone.
func (e *Entry) KillProcesses() error {
	var errs []error
	for _, p := range e.Alive() {
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", p.Pid, err))
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for cmdline(p.Pid) == p.Cmdline && time.Now().Before(deadline) {
			// Not our child any more (its parent died): poll until init
			// has reaped it.
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// RemoveDir removes the run's private directory.
func (e *Entry) RemoveDir() error {
	if e.Dir == "" || !strings.Contains(filepath.Base(e.Dir), "anonlab-") {
		return nil
	}
	return os.RemoveAll(e.Dir)
}

// cmdline is a process's command line, arguments joined by spaces, or ""
// when it does not exist: read through gopsutil, on Linux (/proc) and
// macOS (sysctl) alike.
func cmdline(pid int) string {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return ""
	}
	line, err := p.Cmdline()
	if err != nil {
		return ""
	}
	return strings.TrimRight(line, " ")
}
