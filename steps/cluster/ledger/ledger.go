// Package ledger records what each run creates (processes, directories,
// kind clusters) in a state file of its own, so that `anonlab cleanup` can
// remove the leftovers of a run that was killed before it could clean up.
package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Entry is what one backend instance of one run created.
type Entry struct {
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

// AddProcess records a child.
func (e *Entry) AddProcess(pid int) {
	e.Processes = append(e.Processes, Process{Pid: pid, Cmdline: cmdline(pid)})
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

// List reads every entry.
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
			// Not our child any more (its parent died): poll /proc until
			// init has reaped it.
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
// when it does not exist.
func cmdline(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(bytes.TrimRight(bytes.ReplaceAll(data, []byte{0}, []byte{' '}), " "))
}
