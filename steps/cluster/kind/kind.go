// Package kind runs the lab on a kind cluster, through kind's Go library on
// Docker or Podman. A change to kube-apiserver's flags is made the way the
// article makes it: by editing the static-Pod manifest inside the
// control-plane node (with a backup, restored on cleanup) and waiting for
// the kubelet to replace the Pod.
package kind

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	kindlog "sigs.k8s.io/kind/pkg/log"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/manifests"
	"github.com/anonlab/anonlab/steps/audit"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/kube"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// Name is the backend's name for --backend.
const Name = "kind"

// ClusterPrefix starts the name of every cluster the lab creates, so that
// `kind get clusters` tells them apart and cleanup never touches another.
const ClusterPrefix = "anonlab-"

// DefaultNodeImage is the node image kind's library defaults to.
const DefaultNodeImage = defaults.Image

// LabNodeImage is the tag `make kind-node-image` gives the node image it
// builds, with no registry, for a Kubernetes version.
func LabNodeImage(version string) string { return "anonlab/node:" + version }

type options struct {
	version      string
	nodeImage    string
	runtime      *Runtime
	readyWithin  time.Duration
	createWithin time.Duration
}

// Option configures the backend.
type Option func(*options)

// WithKubernetesVersion is the release to run when no node image is
// given: the image `make kind-node-image` built for it if the engine has
// it, else kind's default (DefaultNodeImage), whatever its version.
func WithKubernetesVersion(v string) Option { return func(o *options) { o.version = v } }

// WithNodeImage chooses the node image.
func WithNodeImage(image string) Option { return func(o *options) { o.nodeImage = image } }

// WithRuntime uses this engine instead of detecting one.
func WithRuntime(rt Runtime) Option { return func(o *options) { o.runtime = &rt } }

// WithReadyTimeout bounds how long a new kube-apiserver may take to serve
// after a manifest edit before the edit is rolled back.
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyWithin = d } }

// Backend is a kind cluster with one control-plane node. It is not safe
// for concurrent use: the engine calls it from one goroutine.
type Backend struct {
	opts  options
	rt    Runtime
	name  string // the cluster's, once Create started making it
	node  nodes.Node
	dir   string // private, 0700: kubeconfig, CA, audit policy and log; removed by Destroy
	cfg   *rest.Config
	poll  *http.Client
	info  cluster.Info
	entry *ledger.Entry // what this run created, for anonlab cleanup

	backedUp bool // the lab put the original manifest at backupPath
	swap     Swap
}

var (
	_ cluster.Backend                = (*Backend)(nil)
	_ cluster.Recorder               = (*Backend)(nil)
	_ cluster.APIServerReconfigurer  = (*Backend)(nil)
	_ cluster.ChangeDescriber        = (*Backend)(nil)
	_ cluster.FlagsDescriber         = (*Backend)(nil)
	_ cluster.APIServerFileReader    = (*Backend)(nil)
	_ cluster.APIServerPodObserver   = (*Backend)(nil)
	_ cluster.AuditLogReader         = (*Backend)(nil)
	_ cluster.ServingAPIServerReader = (*Backend)(nil)
)

// New returns a kind backend; nothing is created until Create.
func New(opts ...Option) *Backend {
	o := options{version: cluster.DefaultKubernetesVersion, readyWithin: 3 * time.Minute, createWithin: 5 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	return &Backend{opts: o}
}

// Name implements cluster.Backend.
func (b *Backend) Name() string { return Name }

// Info implements cluster.Backend.
func (b *Backend) Info() cluster.Info { return b.info }

// Entry implements cluster.Recorder.
func (b *Backend) Entry() *ledger.Entry { return b.entry }

// AdminConfig implements cluster.Backend.
func (b *Backend) AdminConfig() *rest.Config { return rest.CopyConfig(b.cfg) }

// ClusterName is the kind cluster's name, once Create has begun.
func (b *Backend) ClusterName() string { return b.name }

// NodeName is the control-plane node's container name, after Create.
func (b *Backend) NodeName() string {
	if b.node == nil {
		return ""
	}
	return b.node.String()
}

// Create implements cluster.Backend.
func (b *Backend) Create(ctx context.Context) (err error) {
	if b.node != nil {
		return nil
	}
	began := time.Now()
	report := func(detail string, done bool) {
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "create", Detail: detail, Elapsed: time.Since(began), Done: done})
	}
	if b.opts.runtime != nil {
		b.rt = *b.opts.runtime
	} else if b.rt, err = Detect(ctx); err != nil {
		return err
	}
	image := b.opts.nodeImage
	if image == "" {
		image = b.rt.NodeImageFor(ctx, b.opts.version)
	}
	if err := b.ensureImage(ctx, image, report); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Destroy(context.WithoutCancel(ctx)))
		}
	}()
	if b.dir, err = os.MkdirTemp("", "anonlab-kind-"); err != nil {
		return err
	}
	if err = os.Chmod(b.dir, 0o700); err != nil {
		return err
	}
	if err = audit.Prepare(filepath.Join(b.dir, auditPolicyFile), filepath.Join(b.dir, auditDir, auditLogFile)); err != nil {
		return err
	}
	config, err := b.clusterConfig(ctx, image, report)
	if err != nil {
		return err
	}
	name := ClusterPrefix + randomSuffix()
	// Recorded before kind makes anything, so that `anonlab cleanup` finds
	// the cluster even if this process is killed while it is created.
	b.entry = ledger.NewEntry(Name)
	b.entry.Dir, b.entry.KindCluster = b.dir, name
	if err = b.entry.Save(); err != nil {
		return err
	}
	b.name = name
	kubeconfig := filepath.Join(b.dir, "kubeconfig")
	report(fmt.Sprintf("creating kind cluster %s from %s on %s %s", name, image, b.rt.Name, b.rt.Version), false)
	if err = b.createCluster(ctx, name, report,
		kindcluster.CreateWithNodeImage(image),
		kindcluster.CreateWithV1Alpha4Config(config),
		// No wait in kind: it cannot be interrupted (waitNodeReady can).
		kindcluster.CreateWithWaitForReady(0),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	); err != nil {
		return err
	}
	provider := kindcluster.NewProvider(b.rt.providerOption())
	all, err := provider.ListNodes(name)
	if err != nil {
		return fmt.Errorf("list the nodes of kind cluster %s: %w", name, err)
	}
	cps, err := nodeutils.ControlPlaneNodes(all)
	if err != nil || len(cps) == 0 {
		return fmt.Errorf("find the control-plane node of kind cluster %s: %v", name, err)
	}
	b.node = cps[0]
	if err = b.connect(kubeconfig); err != nil {
		return err
	}
	if err = b.waitNodeReady(ctx, report); err != nil {
		return err
	}
	if b.info.KubernetesVersion, b.info.Identity, err = cluster.ReadServer(ctx, b.cfg); err != nil {
		return err
	}
	b.entry.URL, b.entry.Created, b.entry.Kubeconfig = b.cfg.Host, true, kubeconfig
	b.entry.CAFingerprint, b.entry.KubeSystemUID = b.info.Identity.CAFingerprint, b.info.Identity.KubeSystemUID
	if err = b.entry.Save(); err != nil {
		return err
	}
	report(fmt.Sprintf("kind cluster %s: kube-apiserver %s serves at %s (node %s)", name, b.info.KubernetesVersion, b.cfg.Host, b.node), true)
	return nil
}

// stopWithin bounds how long Create waits, once interrupted, for kind's
// create to give up.
const stopWithin = 8 * time.Second

// createCluster runs kind's create, which takes no context, on a goroutine.
// When ctx is done it removes the cluster's node containers, again and
// again while kind runs (a node may appear after the first removal): each
// of kind's steps after the nodes are made runs a command in a node, so it
// fails at once, and kind deletes what is left. kind's progress comes back
// through a channel and is reported from this goroutine, as every other
// report is.
func (b *Backend) createCluster(ctx context.Context, name string, report func(string, bool), opts ...kindcluster.CreateOption) error {
	type line struct {
		detail string
		done   bool
	}
	lines := make(chan line)
	quit := make(chan struct{})
	defer close(quit)
	logger := progressLogger{report: func(detail string, done bool) {
		select {
		case lines <- line{detail, done}:
		case <-quit: // nobody listens any more
		}
	}}
	provider := kindcluster.NewProvider(kindcluster.ProviderWithLogger(logger), b.rt.providerOption())
	created := make(chan error, 1)
	go func() { created <- provider.Create(name, opts...) }()
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("create kind cluster %s: %w%s", name, err, runOutput(err))
	}
	for ctx.Err() == nil {
		select {
		case l := <-lines:
			report(l.detail, l.done)
		case err := <-created:
			return wrap(err)
		case <-ctx.Done():
		}
	}

	stopped := time.Now()
	report("interrupted: removing the nodes of kind cluster "+name+" so that kind stops", false)
	deadline := time.NewTimer(stopWithin)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// Removals run on a goroutine of their own: one can take seconds
	// (docker rm of a running node), and the deadline must still hold.
	var removeErr error
	removed := make(chan error, 1)
	removing := false
	remove := func() {
		removing = true
		go func() { removed <- b.removeNodes(name) }()
	}
	remove()
	for {
		select {
		case l := <-lines:
			report(l.detail, l.done)
		case err := <-created:
			report(fmt.Sprintf("kind stopped %s after the interrupt (%v)", time.Since(stopped).Round(time.Millisecond), err), false)
			// A removal still under way would make the deletion that follows
			// fail ("removal already in progress") and leave the cluster to
			// anonlab cleanup: it is waited for, within the same bound.
			if removing {
				select {
				case <-removed: //nolint:errcheck // the deletion that follows says what is left
				case <-deadline.C:
				}
			}
			return ctx.Err()
		case removeErr = <-removed:
			removing = false
		case <-tick.C:
			if !removing {
				remove()
			}
		case <-deadline.C:
			// kind is stuck in a call that has no node to fail on. Whatever
			// it still makes is removed when it returns; until then the
			// ledger entry stays, for anonlab cleanup should the lab die.
			entry, dir := b.entry, b.dir
			b.entry, b.name = nil, ""
			go func() {
				<-created //nolint:errcheck // whatever kind made is removed, whether it failed or not
				if b.removeNodes(name) == nil && os.RemoveAll(dir) == nil {
					_ = entry.Delete()
				}
			}()
			return fmt.Errorf("%w; kind's create did not stop within %s (last removal: %v): kind cluster %s is removed when it does, or by anonlab cleanup", ctx.Err(), stopWithin, removeErr, name)
		}
	}
}

// removeNodes removes the containers of the cluster's nodes, found by
// kind's cluster label, with their volumes (as kind's delete does).
func (b *Backend) removeNodes(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := run(ctx, b.rt.Name, "ps", "--all", "--quiet", "--filter", "label="+clusterLabel+"="+name)
	if err != nil {
		return err
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	_, err = run(ctx, b.rt.Name, append([]string{"rm", "--force", "--volumes"}, ids...)...)
	return err
}

// clusterLabel is the label kind puts on every node container, with the
// cluster's name as its value.
const clusterLabel = "io.x-k8s.kind.cluster"

// waitNodeReady waits, as kind's CreateWithWaitForReady would but
// interruptibly, for the control-plane node to be Ready; after
// createWithin it goes on with a warning, as kind does.
func (b *Backend) waitNodeReady(ctx context.Context, report func(string, bool)) error {
	cs, err := kube.New(b.cfg)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("waiting ≤ %s for node %s to be Ready", b.opts.createWithin, b.node), false)
	last := "no answer yet"
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, b.opts.createWithin, true, func(ctx context.Context) (bool, error) {
		node, err := kube.Get[corev1.Node](ctx, cs, kube.Nodes, "", b.node.String())
		if err != nil {
			last = err.Error()
			return false, nil // the apiserver may not answer yet
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = string(c.Status) + ": " + c.Message
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if ctx.Err() != nil {
		return fmt.Errorf("wait for node %s to be Ready: %w", b.node, ctx.Err())
	}
	if err != nil {
		report(fmt.Sprintf("warning: node %s is not Ready after %s (last: %s)", b.node, b.opts.createWithin, last), false)
	}
	return nil
}

// ensureImage makes sure the engine has the node image, pulling it as kind
// would; with no registry, it says how to build one.
func (b *Backend) ensureImage(ctx context.Context, image string, report func(string, bool)) error {
	if b.rt.HasImage(ctx, image) {
		return nil
	}
	report("pulling node image "+image, false)
	if err := b.rt.pull(ctx, image); err != nil {
		return fmt.Errorf("%w: kind node image %s is not in %s and could not be pulled (%v)\n"+
			"With no registry, build one: `make kind-node-image` builds %s from Debian packages and Go module sources and prints its tag; pass it as --node-image. Or use --backend local, which needs no container engine",
			cluster.ErrNotAvailable, image, b.rt.Name, err, LabNodeImage(b.opts.version))
	}
	return nil
}

// clusterConfig is manifests/kind-config.yaml, with the lab's audit log
// (withAudit, its files in b.dir) and the kubelet allowed to run on cgroup
// v1 when the host has it and the node's kubelet would otherwise refuse
// (Kubernetes 1.35 and later).
func (b *Backend) clusterConfig(ctx context.Context, image string, report func(string, bool)) (*v1alpha4.Cluster, error) {
	raw, err := manifests.FS.ReadFile("kind-config.yaml")
	if err != nil {
		return nil, err
	}
	config := &v1alpha4.Cluster{}
	if err := sigsyaml.UnmarshalStrict(raw, config); err != nil {
		return nil, fmt.Errorf("manifests/kind-config.yaml: %w", err)
	}
	if err := withAudit(config, b.dir); err != nil {
		return nil, err
	}
	if b.rt.CgroupVersion != 1 {
		return config, nil
	}
	version, err := b.rt.imageKubernetesVersion(ctx, image)
	if err != nil {
		return nil, fmt.Errorf("this host uses cgroup v1, which the kubelet refuses from Kubernetes 1.35 unless told otherwise, and %w", err)
	}
	if !refusesCgroupV1(version) {
		return config, nil
	}
	patch, err := manifests.FS.ReadFile("kind-kubelet-cgroupv1.yaml")
	if err != nil {
		return nil, err
	}
	config.KubeadmConfigPatches = append(config.KubeadmConfigPatches, string(patch))
	report(fmt.Sprintf("warning: this host uses cgroup v1 (%s says so); the kubelet of Kubernetes %s refuses it by default, so the cluster's kubelet runs with failCgroupV1: false. cgroup v1 support is deprecated and will be removed from Kubernetes: use a cgroup v2 host when you can", b.rt.Name, version), false)
	return config, nil
}

// connect reads the kubeconfig kind wrote and prepares the clients and
// the files a person would use (CA, kubeconfig).
func (b *Backend) connect(kubeconfig string) error {
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		return fmt.Errorf("read the kind kubeconfig: %w", err)
	}
	if err := os.Chmod(kubeconfig, 0o600); err != nil {
		return err
	}
	if b.cfg, err = clientcmd.RESTConfigFromKubeConfig(data); err != nil {
		return fmt.Errorf("read the kind kubeconfig: %w", err)
	}
	b.cfg.QPS, b.cfg.Burst = 100, 200
	tlsConfig, err := rest.TLSConfigFor(b.cfg)
	if err != nil {
		return err
	}
	// A new connection for every poll: a kept-alive one would only tell
	// about the apiserver it was opened to.
	b.poll = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	caFile := filepath.Join(b.dir, "ca.crt")
	if err := os.WriteFile(caFile, b.cfg.CAData, 0o600); err != nil {
		return err
	}
	b.info = cluster.Info{
		Backend:      Name,
		URL:          b.cfg.Host,
		CAFile:       caFile,
		CAData:       b.cfg.CAData,
		Kubeconfig:   kubeconfig,
		AdminName:    commonName(b.cfg.CertData),
		CreatedByLab: true,
		Disposable:   true,
		// A path in the node: the commands shown run sed there.
		APIServerManifest: manifestPath,
		Node:              b.node.String(),
		NodeExec:          b.rt.Name + " exec",
	}
	return nil
}

// Destroy implements cluster.Backend: it deletes the cluster (its
// containers and volumes) and the private directory.
func (b *Backend) Destroy(ctx context.Context) error {
	if b.name != "" {
		began := time.Now()
		report := func(detail string, done bool) {
			cluster.ReportProgress(ctx, cluster.Progress{Phase: "destroy", Detail: detail, Elapsed: time.Since(began), Done: done})
		}
		report("deleting kind cluster "+b.name, false)
		p := kindcluster.NewProvider(kindcluster.ProviderWithLogger(progressLogger{report: report}), b.rt.providerOption())
		if err := p.Delete(b.name, filepath.Join(b.dir, "kubeconfig")); err != nil {
			// Kept, with the record, for another try or `anonlab cleanup`.
			return fmt.Errorf("delete kind cluster %s: %w", b.name, err)
		}
	}
	b.name, b.node, b.backedUp = "", nil, false
	if b.dir != "" {
		if err := os.RemoveAll(b.dir); err != nil {
			return err
		}
		b.dir = ""
	}
	// The record goes only once everything it names is gone.
	if b.entry == nil {
		return nil
	}
	err := b.entry.Delete()
	b.entry = nil
	return err
}

// DeleteCluster deletes a lab cluster left behind (`anonlab cleanup`): only
// a name with ClusterPrefix, on the engine that answers.
func DeleteCluster(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, ClusterPrefix) {
		return fmt.Errorf("delete kind cluster %q: not a lab cluster (no %s prefix)", name, ClusterPrefix)
	}
	rt, err := Detect(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "anonlab-kind-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := kindcluster.NewProvider(rt.providerOption())
	if err := p.Delete(name, filepath.Join(dir, "kubeconfig")); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w", name, err)
	}
	return nil
}

// APIServerPod implements cluster.APIServerPodObserver: the kube-apiserver
// Pod's readiness and restart count. After --anonymous-auth=false on a kubeadm cluster it turns
// NotReady (its readiness probe gets 401), and minutes later the kubelet
// restarts it (its startup or liveness probe fails too).
func (b *Backend) APIServerPod(ctx context.Context) (cluster.PodStatus, error) {
	if b.node == nil {
		return cluster.PodStatus{}, errors.New("read the kube-apiserver Pod: the cluster is not running")
	}
	cs, err := kube.New(b.cfg)
	if err != nil {
		return cluster.PodStatus{}, err
	}
	name := "kube-apiserver-" + b.node.String()
	pod, err := kube.Get[corev1.Pod](ctx, cs, kube.Pods, metav1.NamespaceSystem, name)
	if err != nil {
		return cluster.PodStatus{}, fmt.Errorf("read Pod kube-system/%s: %w", name, err)
	}
	st := cluster.PodStatus{Name: name, Phase: string(pod.Status.Phase)}
	for _, c := range pod.Status.Conditions {
		if c.Type == "Ready" {
			st.Ready = c.Status == "True"
		}
	}
	for _, c := range pod.Status.ContainerStatuses {
		st.Restarts += c.RestartCount
	}
	return st, nil
}

// progressLogger turns kind's user-facing messages (its V(0) status lines
// and warnings) into progress reports.
type progressLogger struct{ report func(string, bool) }

func (l progressLogger) Warn(message string)               { l.report("warning: "+strings.TrimSpace(message), false) }
func (l progressLogger) Warnf(format string, args ...any)  { l.Warn(fmt.Sprintf(format, args...)) }
func (l progressLogger) Error(message string)              { l.report("error: "+strings.TrimSpace(message), false) }
func (l progressLogger) Errorf(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) }
func (l progressLogger) Info(message string)               { l.report(strings.TrimSpace(message), false) }
func (l progressLogger) Infof(format string, args ...any)  { l.Info(fmt.Sprintf(format, args...)) }
func (l progressLogger) Enabled() bool                     { return true }
func (l progressLogger) V(level kindlog.Level) kindlog.InfoLogger {
	if level > 0 {
		return kindlog.NoopInfoLogger{}
	}
	return l
}

// runOutput is the end of a failed node command's output (kubeadm's, say),
// which kind's errors carry but do not print, without the Go stack trace
// kubeadm prints after its error.
func runOutput(err error) string {
	var re *kindexec.RunError
	if !errors.As(err, &re) {
		return ""
	}
	var lines []string
	for _, line := range strings.Split(string(re.Output), "\n") {
		frame := strings.HasPrefix(line, "\t") || !strings.Contains(strings.TrimSpace(line), " ") && strings.Contains(line, ".")
		if strings.TrimSpace(line) != "" && !frame {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func commonName(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.Subject.CommonName
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
