// Package local runs a control plane as child processes on 127.0.0.1: etcd
// and kube-apiserver with kubeadm-like flags. It needs no container runtime.
// kube-apiserver's flags live in a static-Pod manifest in the lab's
// directory, which the backend watches as a kubelet does (kubelet.go).
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/anonlab/anonlab/steps/audit"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// Name is the backend's name for --backend.
const Name = "local"

type options struct {
	version     string
	binariesDir string
	source      string
	readyWithin time.Duration
	keep        bool
	noAudit     bool
}

// Option configures the backend.
type Option func(*options)

// WithKubernetesVersion chooses the Kubernetes release to run.
func WithKubernetesVersion(v string) Option { return func(o *options) { o.version = v } }

// WithBinariesDir uses kube-apiserver and etcd from dir instead of the cache.
func WithBinariesDir(dir string) Option { return func(o *options) { o.binariesDir = dir } }

// WithBinariesSource says where binaries missing from the cache come from
// (binaries.SourceAuto, SourceDownload, SourceBuild; default
// $ANONLAB_BINARIES_SOURCE, else auto).
func WithBinariesSource(source string) Option { return func(o *options) { o.source = source } }

// WithReadyTimeout bounds how long kube-apiserver may take to serve after a
// start or a flag change before it counts as failed.
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyWithin = d } }

// WithKeep makes the processes outlive the lab (--keep): otherwise, on
// Linux, the system kills them when the lab dies, however it dies.
func WithKeep(keep bool) Option { return func(o *options) { o.keep = keep } }

// WithoutAuditLog runs kube-apiserver with no audit log: what its cost is
// measured against (make bench); the lab itself always keeps one.
func WithoutAuditLog() Option { return func(o *options) { o.noAudit = true } }

// Backend is the local control plane. The engine calls it from one
// goroutine; its kubelet (kubelet.go) runs on another from Create to
// Destroy, and the two share the fields below mu.
type Backend struct {
	opts options
	dir  string // private, 0700, removed by Destroy
	bin  string
	etcd *process
	// controllers is kube-controller-manager, for releases before 1.24
	// only (controllers.go).
	controllers *process
	port        int
	cfg         *rest.Config
	http        *http.Client
	info        cluster.Info
	entry       *ledger.Entry // what this run created, for anonlab cleanup
	// stopKubelet ends the kubelet and waits until it has returned, which
	// closes kubeletDone.
	stopKubelet func()
	kubeletDone <-chan struct{}
	recording   sync.Mutex // serialises record

	mu sync.Mutex
	// pod is the kube-apiserver started last.
	pod *pod
	// draining are replaced kube-apiservers that no longer listen and
	// have not exited yet (replace).
	draining []*process
	// startErr is why a kube-apiserver started from the manifest failed,
	// since one last served: its own last error line when it has one.
	startErr string
	// synced is the manifest the kubelet read last.
	synced []byte
	// changed is closed, and replaced, when the kubelet has read the
	// manifest or pod or startErr changed.
	changed chan struct{}
}

var (
	_ cluster.Backend                = (*Backend)(nil)
	_ cluster.Recorder               = (*Backend)(nil)
	_ cluster.APIServerReconfigurer  = (*Backend)(nil)
	_ cluster.ChangeDescriber        = (*Backend)(nil)
	_ cluster.FlagsDescriber         = (*Backend)(nil)
	_ cluster.APIServerFileReader    = (*Backend)(nil)
	_ cluster.ServingAPIServerReader = (*Backend)(nil)
)

// New returns a local backend; nothing starts until Create.
func New(opts ...Option) *Backend {
	o := options{version: cluster.DefaultKubernetesVersion, readyWithin: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return &Backend{opts: o, changed: make(chan struct{})}
}

// Name implements cluster.Backend.
func (b *Backend) Name() string { return Name }

// Info implements cluster.Backend.
func (b *Backend) Info() cluster.Info { return b.info }

// AdminConfig implements cluster.Backend.
func (b *Backend) AdminConfig() *rest.Config { return rest.CopyConfig(b.cfg) }

// Entry implements cluster.Recorder.
func (b *Backend) Entry() *ledger.Entry { return b.entry }

// Dir is the backend's private directory (certificates, keys, logs, data).
func (b *Backend) Dir() string { return b.dir }

// AuditLogPath is kube-apiserver's audit log (audit.k8s.io/v1 events, one
// JSON object a line, Metadata level): empty until Create.
func (b *Backend) AuditLogPath() string {
	if b.dir == "" || b.opts.noAudit {
		return ""
	}
	return filepath.Join(b.dir, auditLog)
}

// Pids are the process ids of the children that run now.
func (b *Backend) Pids() []int {
	var pids []int
	b.mu.Lock()
	draining := slices.Clone(b.draining)
	b.mu.Unlock()
	for _, p := range append([]*process{b.etcd, b.apiserver(), b.controllers}, draining...) {
		if p != nil && p.running() {
			pids = append(pids, p.Pid())
		}
	}
	return pids
}

// apiserver is the kube-apiserver process started last, nil if none.
func (b *Backend) apiserver() *process {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pod == nil {
		return nil
	}
	return b.pod.proc
}

// Create implements cluster.Backend.
func (b *Backend) Create(ctx context.Context) (err error) {
	if p := b.apiserver(); p != nil && p.running() {
		return nil
	}
	bin, err := binaries.Resolve(ctx, b.opts.version, binaries.WithDir(b.opts.binariesDir), binaries.WithSource(b.opts.source))
	if err != nil {
		return err
	}
	b.bin = bin
	began := time.Now()
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: "starting etcd and kube-apiserver on 127.0.0.1"})
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Destroy(context.WithoutCancel(ctx)))
		}
	}()
	if b.dir, err = os.MkdirTemp("", "anonlab-local-"); err != nil {
		return err
	}
	if err = os.Chmod(b.dir, 0o700); err != nil {
		return err
	}
	b.entry = ledger.NewEntry(Name)
	b.entry.Dir = b.dir
	if err = b.entry.Save(); err != nil {
		return err
	}
	p, err := newPKI()
	if err != nil {
		return err
	}
	if err = p.write(b.dir); err != nil {
		return err
	}
	if err = audit.Prepare(filepath.Join(b.dir, auditPolicy), filepath.Join(b.dir, auditLog)); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err = b.startControlPlane(ctx, p)
		if err == nil || ctx.Err() != nil {
			break
		}
		taken := b.portTaken()
		if taken == "" {
			break
		}
		if attempt == startAttempts {
			return fmt.Errorf("%w (a port was taken on each of %d attempts)", err, attempt)
		}
		// freePorts only finds ports that were free a moment ago; another
		// program (a concurrent run) bound one since. Start again on others.
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: "a port was taken (" + taken + "); starting again on other ports", Elapsed: time.Since(began)})
		b.apiserver().kill()
		b.etcd.kill()
		b.mu.Lock()
		b.pod = nil
		b.mu.Unlock()
		b.etcd = nil
		if err = os.RemoveAll(filepath.Join(b.dir, "etcd")); err != nil {
			return fmt.Errorf("remove the data of the etcd that could not start: %w", err)
		}
	}
	if err != nil {
		return err
	}
	if err = b.writeKubeconfig(); err != nil {
		return err
	}
	if err = b.writeManifests(); err != nil {
		return err
	}
	version, id, err := cluster.ReadServer(ctx, b.cfg)
	if err != nil {
		return err
	}
	b.info = cluster.Info{
		Backend:           Name,
		KubernetesVersion: version,
		URL:               b.cfg.Host,
		CAFile:            filepath.Join(b.dir, "ca.crt"),
		CAData:            p.caCert,
		Kubeconfig:        filepath.Join(b.dir, "admin.kubeconfig"),
		AdminName:         adminUser,
		CreatedByLab:      true,
		Disposable:        true,
		Identity:          id,
		APIServerManifest: b.manifestPath(),
	}
	b.entry.Created, b.entry.Kubeconfig = true, b.info.Kubeconfig
	b.entry.CAFingerprint, b.entry.KubeSystemUID = id.CAFingerprint, id.KubeSystemUID
	if err = b.entry.Save(); err != nil {
		return err
	}
	if err = b.startControllers(); err != nil {
		return err
	}
	// Last: the entry is the kubelet's to update from now on.
	if err = b.startKubelet(); err != nil {
		return err
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: "kube-apiserver " + version + " serves at " + b.cfg.Host, Elapsed: time.Since(began), Done: true})
	return nil
}

// startAttempts bounds how often Create picks other ports after one was
// taken between freePorts and the child's bind.
const startAttempts = 5

// startControlPlane starts etcd and kube-apiserver on newly picked ports and
// waits until kube-apiserver is ready. The kubelet, started next, takes
// this kube-apiserver as the one its manifest describes.
func (b *Backend) startControlPlane(ctx context.Context, p *pki) error {
	ports, err := pickPorts(3)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	b.port = ports[2]
	b.entry.URL = "https://127.0.0.1:" + strconv.Itoa(b.port)
	b.etcd, err = start(binaries.Etcd, filepath.Join(b.bin, binaries.Etcd), []string{
		"--name=default",
		"--data-dir=" + filepath.Join(b.dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--listen-metrics-urls=", // no extra listener
		"--unsafe-no-fsync",      // a throw-away lab store; fsync only slows it
	}, filepath.Join(b.dir, "etcd.log"), !b.opts.keep)
	if err != nil {
		return err
	}
	if err = b.record(); err != nil {
		return err
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(b.port),
		// A loopback advertise address needs the endpoint reconciler off
		// (refused since v1.37); the lab does not use the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + filepath.Join(b.dir, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(b.dir, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(b.dir, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(b.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(b.dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--enable-admission-plugins=NodeRestriction",
	}
	args = append(args, legacyFlags(b.opts.version)...)
	if !b.opts.noAudit {
		args = append(args,
			"--audit-policy-file="+filepath.Join(b.dir, auditPolicy),
			"--audit-log-path="+filepath.Join(b.dir, auditLog),
			// The log backend's default, said because the lab relies on it:
			// the request's own goroutine writes its event, before the
			// request ends.
			"--audit-log-mode=blocking")
	}
	b.cfg = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(b.port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: p.caCert, CertData: p.adminCert, KeyData: p.adminKey,
		},
		QPS: 100, Burst: 200,
	}
	if b.http, err = rest.HTTPClientFor(b.cfg); err != nil {
		return err
	}
	apiserver, err := b.startAPIServer(args)
	if err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	report := func(detail string, elapsed time.Duration) {
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: detail, Elapsed: elapsed})
	}
	rctx, cancel := context.WithTimeout(ctx, b.opts.readyWithin)
	defer cancel()
	if err := b.waitReady(rctx, apiserver.proc, report); err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	b.settle(apiserver, nil)
	return nil
}

// portTaken names the child that exited because its port was taken, with
// the error (the whole last error line if it has no "listen tcp" part),
// else "".
func (b *Backend) portTaken() string {
	for _, p := range []*process{b.etcd, b.apiserver()} {
		if p == nil || p.running() {
			continue
		}
		if line := p.lastError(); bindFailed(line) {
			if short := listenError.FindString(line); short != "" {
				line = short
			}
			return p.name + ": " + line
		}
	}
	return ""
}

// listenError is Go's error for a failed listen, as both children log it.
var listenError = regexp.MustCompile(`listen tcp \S+: bind: [^"]+`)

// bindFailed reports whether a child's last error line says it could not
// listen on its port.
func bindFailed(line string) bool {
	return strings.Contains(line, "address already in use") || strings.Contains(line, "bind:")
}

const (
	auditPolicy = "audit-policy.yaml"
	auditLog    = "audit.log"
)

func (b *Backend) writeKubeconfig() error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["anonlab"] = &clientcmdapi.Cluster{Server: b.cfg.Host, CertificateAuthorityData: b.cfg.CAData}
	kc.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{ClientCertificateData: b.cfg.CertData, ClientKeyData: b.cfg.KeyData}
	kc.Contexts["anonlab"] = &clientcmdapi.Context{Cluster: "anonlab", AuthInfo: adminUser}
	kc.CurrentContext = "anonlab"
	return clientcmd.WriteToFile(*kc, filepath.Join(b.dir, "admin.kubeconfig"))
}

// startAPIServer starts kube-apiserver with args as the current pod and
// records it in the run's ledger entry. The pod's process is nil when it
// could not start.
func (b *Backend) startAPIServer(args []string) (*pod, error) {
	log := filepath.Join(b.dir, "kube-apiserver.log")
	// The one it replaces may still be writing its shutdown to its log.
	// Best effort: a log that cannot be moved is replaced, as before.
	_ = os.Rename(log, filepath.Join(b.dir, "kube-apiserver.previous.log"))
	proc, err := start(binaries.KubeAPIServer, filepath.Join(b.bin, binaries.KubeAPIServer), args, log, !b.opts.keep)
	p := &pod{args: args, proc: proc, state: starting}
	b.mu.Lock()
	b.pod = p
	b.mu.Unlock()
	if err != nil {
		return p, err
	}
	return p, b.record()
}

// waitReady polls kube-apiserver's /readyz as the admin until it answers
// 200, the process or etcd exits, or ctx ends (its deadline is the bound),
// telling report what it saw.
func (b *Backend) waitReady(ctx context.Context, p *process, report func(detail string, elapsed time.Duration)) error {
	start := time.Now()
	interval := 10 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	last := "no answer yet"
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s (last: %s): %w", time.Since(start).Round(time.Millisecond), last, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("kube-apiserver exited (%v): %s", p.err, p.lastError())
		case <-b.etcd.exited:
			return fmt.Errorf("etcd exited (%v): %s", b.etcd.err, b.etcd.lastError())
		case <-timer.C:
		}
		code, err := b.get(ctx, "/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "GET /readyz " + strconv.Itoa(code)
		}
		report("polling "+b.cfg.Host+"/readyz as "+adminUser+": "+last, time.Since(start))
		timer.Reset(interval)
		interval = min(interval*2, 50*time.Millisecond)
	}
}

func (b *Backend) get(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.Host+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Destroy implements cluster.Backend. The processes are killed rather than
// shut down gracefully: everything they hold is deleted with them.
func (b *Backend) Destroy(context.Context) error {
	if b.stopKubelet != nil {
		b.stopKubelet()
		b.stopKubelet = nil
	}
	if b.http != nil {
		b.http.CloseIdleConnections()
	}
	b.controllers.kill()
	b.controllers = nil
	b.apiserver().kill()
	b.etcd.kill()
	b.mu.Lock()
	b.pod = nil
	b.mu.Unlock()
	b.etcd = nil
	var errs []error
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
		b.dir = ""
	}
	if b.entry != nil {
		errs = append(errs, b.entry.Delete())
		b.entry = nil
	}
	return errors.Join(errs...)
}

// record writes the processes that run now into the run's ledger entry.
func (b *Backend) record() error {
	b.recording.Lock() // the kubelet's goroutines record too
	defer b.recording.Unlock()
	b.entry.SetProcesses(b.Pids()...)
	if err := b.entry.Save(); err != nil {
		return fmt.Errorf("record the lab's processes: %w", err)
	}
	return nil
}

// pickPorts is freePorts; a test makes it return a port it holds.
var pickPorts = freePorts

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
