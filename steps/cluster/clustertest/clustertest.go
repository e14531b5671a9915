// Package clustertest is a fake cluster.Backend for the engine's
// control-flow tests only: the gate, skips, cleanup, the safety net, the
// TUI's frames. It serves HTTPS from an httptest server whose CA is real
// (clients verify it) and answers the requests the lab's steps send the
// way kube-apiserver does (a Status body, 401 vs 403, a tiny RBAC over the
// ClusterRoles and ClusterRoleBindings applied to it), but it is no
// apiserver: the e2e suites and the real-apiserver tests run real ones.
package clustertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Name is the backend's name.
const Name = "clustertest"

// AdminName is who the admin's client certificate authenticates as.
const AdminName = "kubernetes-admin"

// Op names a backend operation that Hold can stop.
type Op string

// Operations Hold can stop.
const (
	OpCreate      Op = "create"
	OpReconfigure Op = "reconfigure"
)

type options struct {
	notByLab  bool
	createErr error
	refuse    *string // kube-apiserver's last error line when it refuses a flag change
	holds     map[Op]holdSpec
	now       func() time.Time
	saRace    bool
	version   string
}

// Option configures the fake.
type Option func(*options)

// KubernetesVersion makes the fake say it runs version (Info), instead of
// the default: what per-version steps and expectations are judged by.
func KubernetesVersion(version string) Option { return func(o *options) { o.version = version } }

// NotCreatedByLab makes the cluster one the lab did not create
// (Info().CreatedByLab is false), as the existing backend's are.
func NotCreatedByLab() Option { return func(o *options) { o.notByLab = true } }

// RacingServiceAccountController makes a ServiceAccount appear right after
// a GET found it missing, as kube-controller-manager's ServiceAccount
// controller does on a cluster that has just come up (kind).
func RacingServiceAccountController() Option { return func(o *options) { o.saRace = true } }

// FailCreate makes Create return err.
func FailCreate(err error) Option { return func(o *options) { o.createErr = err } }

// RefuseFlags makes every ReconfigureAPIServer fail as kube-apiserver
// refusing to start does: the flags stay as they were and the error is a
// *cluster.RollbackError carrying lastError.
func RefuseFlags(lastError string) Option { return func(o *options) { o.refuse = &lastError } }

type holdSpec struct {
	release <-chan struct{}
	report  cluster.Progress
}

// Hold makes op report progress as report says (a long build, a slow
// restart) and then wait until release is closed or its context ends, for
// tests that act while a step runs.
func Hold(op Op, release <-chan struct{}, report cluster.Progress) Option {
	return func(o *options) { o.holds[op] = holdSpec{release, report} }
}

// WithClock sets the clock that dates the tokens it issues.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Calls counts the backend operations the engine asked for.
type Calls struct {
	Create, Destroy, Reconfigure, Restore int
}

// Backend is the fake. Its methods and its server may be used from any
// goroutine.
type Backend struct {
	opts options

	mu       sync.Mutex
	calls    Calls
	srv      *httptest.Server
	dir      string
	info     cluster.Info
	cfg      *rest.Config
	baseArgs []string
	args     []string
	state    *state   // what the server stores; reset by Create
	issued   []string // every token issued, kept after Destroy
}

var (
	_ cluster.Backend               = (*Backend)(nil)
	_ cluster.APIServerReconfigurer = (*Backend)(nil)
)

// New returns the fake; nothing serves until Create.
func New(opts ...Option) *Backend {
	o := options{holds: map[Op]holdSpec{}, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return &Backend{opts: o}
}

// Name implements cluster.Backend.
func (b *Backend) Name() string { return Name }

// Create implements cluster.Backend: it starts the HTTPS server, with a
// fresh store, unless it serves already.
func (b *Backend) Create(ctx context.Context) (err error) {
	b.mu.Lock()
	b.calls.Create++
	running := b.srv != nil
	b.mu.Unlock()
	if running {
		return nil
	}
	if b.opts.createErr != nil {
		return b.opts.createErr
	}
	began := time.Now()
	if err := b.hold(ctx, OpCreate); err != nil {
		return fmt.Errorf("create the cluster: %w", err)
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: "starting the fake kube-apiserver on 127.0.0.1"})
	dir, err := os.MkdirTemp("", "anonlab-clustertest-")
	if err != nil {
		return fmt.Errorf("create the cluster's directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	p, err := newPKI()
	if err != nil {
		return err
	}
	st := newState(b.opts.now)
	srv := httptest.NewUnstartedServer(&handler{b: b, st: st})
	srv.TLS = p.serverTLS()
	srv.StartTLS()
	info := cluster.Info{
		Backend:           Name,
		KubernetesVersion: cmp.Or(b.opts.version, cluster.DefaultKubernetesVersion),
		URL:               srv.URL,
		CAFile:            filepath.Join(dir, "ca.crt"),
		CAData:            servingCA(srv),
		Kubeconfig:        filepath.Join(dir, "admin.kubeconfig"),
		AdminName:         AdminName,
		CreatedByLab:      !b.opts.notByLab,
		// A lab cluster goes with Destroy; a foreign one stays, as
		// existing's does.
		Disposable: !b.opts.notByLab,
	}
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: info.CAData, CertData: p.adminCert, KeyData: p.adminKey}}
	if err = writeFiles(info, cfg); err != nil {
		srv.Close()
		return err
	}
	b.mu.Lock()
	b.srv, b.dir, b.info, b.cfg, b.state = srv, dir, info, cfg, st
	b.baseArgs = []string{"--secure-port=" + srv.Listener.Addr().String(), "--authorization-mode=Node,RBAC"}
	b.args = slices.Clone(b.baseArgs)
	b.mu.Unlock()
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: "kube-apiserver " + info.KubernetesVersion + " serves at " + info.URL, Elapsed: time.Since(began), Done: true})
	return nil
}

func writeFiles(info cluster.Info, cfg *rest.Config) error {
	if err := os.WriteFile(info.CAFile, info.CAData, 0o600); err != nil {
		return fmt.Errorf("write the cluster's CA: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[Name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[AdminName] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[Name] = &clientcmdapi.Context{Cluster: Name, AuthInfo: AdminName}
	kc.CurrentContext = Name
	if err := clientcmd.WriteToFile(*kc, info.Kubeconfig); err != nil {
		return fmt.Errorf("write the admin kubeconfig: %w", err)
	}
	return nil
}

// hold reports what Hold gave op, and waits for its release.
func (b *Backend) hold(ctx context.Context, op Op) error {
	h, ok := b.opts.holds[op]
	if !ok {
		return nil
	}
	cluster.ReportProgress(ctx, h.report)
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Destroy implements cluster.Backend.
func (b *Backend) Destroy(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls.Destroy++
	if b.srv == nil {
		return nil
	}
	b.srv.Close()
	err := os.RemoveAll(b.dir)
	// Info stays, as the local backend's does: it names what was deleted.
	b.srv, b.dir, b.cfg, b.state, b.args = nil, "", nil, nil, nil
	if err != nil {
		return fmt.Errorf("remove the cluster's directory: %w", err)
	}
	return nil
}

// Info implements cluster.Backend. After Destroy it still describes the
// cluster that was deleted.
func (b *Backend) Info() cluster.Info {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.info
}

// AdminConfig implements cluster.Backend.
func (b *Backend) AdminConfig() *rest.Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg == nil {
		return &rest.Config{}
	}
	return rest.CopyConfig(b.cfg)
}

var errNotRunning = errors.New("the cluster is not running")

// ReconfigureAPIServer implements cluster.APIServerReconfigurer. The fake
// honours --anonymous-auth=false (anonymous requests get 401); other flags
// are only recorded.
func (b *Backend) ReconfigureAPIServer(ctx context.Context, change cluster.APIServerChange) error {
	b.mu.Lock()
	b.calls.Reconfigure++
	dir := b.dir
	b.mu.Unlock()
	if dir == "" {
		return fmt.Errorf("reconfigure kube-apiserver: %w", errNotRunning)
	}
	if err := b.hold(ctx, OpReconfigure); err != nil {
		return fmt.Errorf("wait for kube-apiserver: %w", err)
	}
	if b.opts.refuse != nil {
		return &cluster.RollbackError{Change: change, LastError: *b.opts.refuse, Err: errors.New("kube-apiserver exited")}
	}
	filesDir := filepath.Join(dir, "files")
	if len(change.Files) > 0 {
		if err := os.MkdirAll(filesDir, 0o700); err != nil {
			return fmt.Errorf("reconfigure kube-apiserver: %w", err)
		}
		for name, data := range change.Files {
			if err := os.WriteFile(filepath.Join(filesDir, filepath.Base(name)), data, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	b.mu.Lock()
	b.args = cluster.ApplyFlags(b.args, change, filesDir)
	b.mu.Unlock()
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: "kube-apiserver serves with the new flags", Done: true})
	return nil
}

// RestoreAPIServer implements cluster.APIServerReconfigurer.
func (b *Backend) RestoreAPIServer(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls.Restore++
	if b.srv == nil {
		return fmt.Errorf("restore kube-apiserver's flags: %w", errNotRunning)
	}
	b.args = slices.Clone(b.baseArgs)
	return nil
}

// APIServerArgs implements cluster.APIServerReconfigurer.
func (b *Backend) APIServerArgs(context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return nil, fmt.Errorf("read kube-apiserver's flags: %w", errNotRunning)
	}
	return slices.Clone(b.args), nil
}

// Calls counts the operations asked for so far.
func (b *Backend) Calls() Calls {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// BaseArgs are the flags the fake kube-apiserver was created with; nil
// while it does not run.
func (b *Backend) BaseArgs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return nil
	}
	return slices.Clone(b.baseArgs)
}

// Objects lists what is stored now, as "resource/name" (namespaced ones
// as "resource/namespace/name"), sorted; nil while it does not run.
func (b *Backend) Objects() []string {
	b.mu.Lock()
	st := b.state
	b.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.objectNames()
}

// Tokens lists every token the fake has issued, so that tests can look
// for them where they must not be.
func (b *Backend) Tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.issued)
}

func (b *Backend) recordToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.issued = append(b.issued, token)
}

func (b *Backend) currentArgs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.args
}
