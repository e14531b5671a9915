// Package cluster declares what the engine needs from a Kubernetes control
// plane, whichever way it is provided (local processes, kind, an existing
// kubeconfig). Implementations live in the sub-packages; picking one by name
// happens in package backends.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// DefaultKubernetesVersion is the Kubernetes release the lab uses unless
// told otherwise.
const DefaultKubernetesVersion = "v1.37.2"

// Backend provides one control plane for a run.
type Backend interface {
	// Name is the backend's name as given to --backend.
	Name() string
	// Create brings the control plane up, or does nothing when it already
	// runs. It returns once the apiserver serves.
	Create(ctx context.Context) error
	// Destroy stops and removes everything Create made. It is safe to call
	// more than once and on a backend that was never created.
	Destroy(ctx context.Context) error
	// Info describes the running control plane; valid after Create.
	Info() Info
	// AdminConfig is a REST config with full rights; valid after Create.
	AdminConfig() *rest.Config
}

// Info describes a running control plane.
type Info struct {
	// Backend is the backend's name.
	Backend string
	// KubernetesVersion is the apiserver's version as it reports it.
	KubernetesVersion string
	// URL is the apiserver's base URL (https://host:port).
	URL string
	// CAFile is the path of the PEM file with the cluster's CA, for the
	// commands a person would type (curl --cacert).
	CAFile string
	// CAData is the same CA, PEM encoded.
	CAData []byte
	// Kubeconfig is the path of an admin kubeconfig, for the kubectl
	// commands a person would type.
	Kubeconfig string
	// AdminName is who the admin credentials authenticate as.
	AdminName string
	// CreatedByLab tells whether the lab made this control plane, and so
	// may write to it and open it to anonymous users
	// (docs/architecture.md, Safety). It is a recorded fact: the ledger
	// holds the Identity of every cluster the lab created.
	CreatedByLab bool
	// Disposable tells whether Destroy deletes the control plane, and with
	// it everything the run wrote (local, kind); an existing cluster stays.
	Disposable bool
	// Identity is what tells this control plane from every other.
	Identity Identity
	// APIServerManifest is kube-apiserver's static-Pod manifest, the file a
	// person edits to change its flags: a path on this machine (local) or
	// in Node (kind); "" when the backend has none.
	APIServerManifest string
	// Node is the container that runs the control plane (kind); "" when it
	// runs on this machine.
	Node string
	// NodeExec is the command that runs a command in Node ("docker exec"),
	// "" when there is no Node.
	NodeExec string
}

// Recorder is implemented by every backend: its ledger entry for the run,
// where the engine records what it applies before applying it.
type Recorder interface {
	Entry() *ledger.Entry
}

// APIServerChange is a change to kube-apiserver's command line.
type APIServerChange struct {
	// Set adds flags, replacing any existing flag of the same name:
	// "--anonymous-auth=false".
	Set []string
	// Remove drops flags by name: "--anonymous-auth".
	Remove []string
	// Files are written where kube-apiserver can read them before it
	// restarts; a flag value may refer to one as $(FILES)/name.
	Files map[string][]byte
	// Sources names, by file name, the scenario's manifest each of Files
	// comes from: the commands shown to a person copy it from $MANIFESTS.
	Sources map[string]string
}

// SetIn is Set with FilesDirPlaceholder replaced by dir, the directory that
// holds Files on the backend.
func (c APIServerChange) SetIn(dir string) []string {
	out := make([]string, len(c.Set))
	for i, f := range c.Set {
		out[i] = strings.ReplaceAll(f, FilesDirPlaceholder, dir)
	}
	return out
}

// FilesDirPlaceholder is replaced in flag values by the directory that holds
// APIServerChange.Files on the backend.
const FilesDirPlaceholder = "$(FILES)"

// APIServerReconfigurer is implemented by backends that can change the
// flags of the kube-apiserver they run.
type APIServerReconfigurer interface {
	// ReconfigureAPIServer applies the change, restarts kube-apiserver and
	// waits until the new one serves. When it does not serve within the
	// backend's bound, the previous flags are put back and the error is a
	// *RollbackError.
	ReconfigureAPIServer(ctx context.Context, change APIServerChange) error
	// RestoreAPIServer puts back the flags kube-apiserver had when the
	// cluster was created, if they were changed.
	RestoreAPIServer(ctx context.Context) error
	// APIServerArgs is kube-apiserver's current command line (flags only).
	APIServerArgs(ctx context.Context) ([]string, error)
}

// RollbackError says a change kept kube-apiserver from serving and was undone.
type RollbackError struct {
	// Change is what was tried.
	Change APIServerChange
	// LastError is kube-apiserver's own last error line.
	LastError string
	// Err is why the change was judged failed.
	Err error
}

func (e *RollbackError) Error() string {
	msg := "kube-apiserver did not serve with the new flags; the previous flags were restored"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.LastError != "" {
		msg += "\nkube-apiserver said: " + e.LastError
	}
	return msg
}

func (e *RollbackError) Unwrap() error { return e.Err }

// ErrNotAvailable is returned when a backend cannot run on this machine.
var ErrNotAvailable = errors.New("backend not available")

// Progress reports long work inside a backend (a binary build, a cluster
// creation, a wait for the apiserver).
type Progress struct {
	// Phase names the work: "build", "download", "create", "wait".
	Phase string
	// Detail is the latest thing to say about it: a build's last log line,
	// what is being polled.
	Detail string
	// Elapsed is the time since the phase began.
	Elapsed time.Duration
	// Done is set on the phase's last report.
	Done bool
	// Count of Total units of work are done (a source build: packages
	// compiled); both 0 when the work cannot be counted.
	Count, Total int
	// Left is the estimated time left, 0 when unknown.
	Left time.Duration
}

// HowFar says how far counted work is: "812/2143 packages (37%), about
// 6m10s left"; "" for work that is not counted.
func (p Progress) HowFar() string { return HowFar(p.Count, p.Total, p.Left) }

// Line is p on one line, as anonlab prints it on stderr: "build (1m35s)
// 812/2143 packages (37%), about 6m10s left: <the go command's last line>".
func (p Progress) Line() string {
	far := p.HowFar()
	if far != "" {
		far = " " + far
	}
	return fmt.Sprintf("%s (%s)%s: %s", p.Phase, p.Elapsed.Round(100*time.Millisecond), far, p.Detail)
}

// HowFar is Progress.HowFar for the fields of a progress event.
func HowFar(count, total int, left time.Duration) string {
	if total <= 0 {
		return ""
	}
	s := fmt.Sprintf("%d/%d packages (%d%%)", count, total, count*100/total)
	switch {
	case left >= time.Minute:
		s += ", about " + left.Round(10*time.Second).String() + " left"
	case left > 0:
		s += ", about " + left.Round(time.Second).String() + " left"
	}
	return s
}

type progressKey struct{}

type noRollbackKey struct{}

// WithoutRollbackOnCancel returns a context whose cancellation (Ctrl-C)
// during ReconfigureAPIServer needs no rollback: the cluster is deleted
// next, so a backend may return at once instead of restarting the previous
// kube-apiserver.
func WithoutRollbackOnCancel(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRollbackKey{}, true)
}

// RollbackOnCancel reports whether an interrupted change must be rolled back.
func RollbackOnCancel(ctx context.Context) bool {
	no, _ := ctx.Value(noRollbackKey{}).(bool)
	return !no
}

// WithProgress returns a context whose backend operations report progress
// to fn.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress sends p to the function set by WithProgress, if any.
func ReportProgress(ctx context.Context, p Progress) {
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok {
		fn(p)
	}
}

// AuditLogReader is implemented by backends whose kube-apiserver writes an
// audit log (audit.k8s.io/v1 events, one a line) that the lab can read.
type AuditLogReader interface {
	AuditLogPath() string
}

// ChangeDescriber is implemented by backends that can say how a person
// would make an APIServerChange by hand on them.
type ChangeDescriber interface {
	DescribeChange(change APIServerChange) string
}

// FlagsDescriber is implemented by backends that can say how a person
// would read kube-apiserver's flags on them.
type FlagsDescriber interface {
	DescribeFlagsRead() string
}

// APIServerFileReader is implemented by backends that can read a file
// kube-apiserver reads (a path named in its flags).
type APIServerFileReader interface {
	ReadAPIServerFile(ctx context.Context, path string) ([]byte, error)
}

// PodStatus is the kube-apiserver static Pod as the API shows it (its
// mirror Pod).
type PodStatus struct {
	Name     string
	Phase    string
	Ready    bool
	Restarts int32
}

// APIServerPodObserver is implemented by backends whose kube-apiserver is a
// static Pod watched by a kubelet and its probes.
type APIServerPodObserver interface {
	APIServerPod(ctx context.Context) (PodStatus, error)
}

// ServingAPIServerReader is implemented by backends whose kube-apiserver a
// person restarts by editing Info.APIServerManifest (local, kind): hands-on
// mode sees the attendee's edit take effect through it.
type ServingAPIServerReader interface {
	// ServingAPIServer is the flags of the kube-apiserver that serves now
	// (nil when none does), and, when a kube-apiserver started from the
	// manifest since has failed, its last error line.
	ServingAPIServer(ctx context.Context) (args []string, startError string, err error)
}
