// Package binaries finds, downloads or builds the kube-apiserver and etcd
// executables the local backend runs: from an explicit directory, from the
// user cache, else envtest's release of the requested Kubernetes version
// (download.go) or a build from its Go module sources.
// The kind node image's build uses the same builder for the other
// Kubernetes commands, etcd, CoreDNS and crictl (BuildKubernetes,
// BuildEtcd, BuildCommand), under the same lock.
package binaries

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Names of the executables a directory must hold.
const (
	KubeAPIServer = "kube-apiserver"
	Etcd          = "etcd"
)

type options struct {
	dir      string
	cacheDir string
	source   string
	indexURL string
}

// Option configures Resolve.
type Option func(*options)

// WithDir makes Resolve use dir and nothing else.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithCacheDir sets the cache root (default $XDG_CACHE_HOME/anonlab).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// CacheRoot is where built binaries are kept, one directory per version.
func CacheRoot() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache directory: %w", err)
	}
	return filepath.Join(base, "anonlab"), nil
}

// Resolve returns a directory holding kube-apiserver and etcd for version:
// the explicit directory if one is given, else the cache, else it
// downloads or builds them into the cache (see WithSource), reporting
// progress through ctx (see cluster.WithProgress).
func Resolve(ctx context.Context, version string, opts ...Option) (string, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dir != "" {
		if err := complete(o.dir); err != nil {
			return "", err
		}
		return o.dir, nil
	}
	if !semver.IsValid(version) || semver.Major(version) != "v1" {
		return "", fmt.Errorf("kubernetes version %q: want a release such as %s", version, cluster.DefaultKubernetesVersion)
	}
	if o.source == "" {
		o.source = DefaultSource()
	}
	if err := ValidSource(o.source); err != nil {
		return "", err
	}
	if o.indexURL == "" {
		o.indexURL = os.Getenv(IndexEnv)
	}
	if o.indexURL == "" {
		o.indexURL = DefaultIndexURL
	}
	root, err := cacheRoot(o)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, version)
	if complete(dir) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create cache %s: %w", root, err)
	}
	unlock, err := lock(ctx, filepath.Join(root, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have installed it while we waited for the lock.
	if complete(dir) == nil {
		return dir, nil
	}
	if err := obtain(ctx, o, version, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func complete(dir string) error {
	for _, name := range []string{KubeAPIServer, Etcd} {
		if err := executable(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("binaries directory %s: %w", dir, err)
		}
	}
	return nil
}

func executable(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", filepath.Base(file))
	}
	return nil
}

// lock takes an exclusive lock on path, so that only one Kubernetes build
// or download runs at a time on the machine (a build needs ~2 GB and both
// cores; two installs into one directory would race).
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	start := time.Now()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("take build lock %s: %w", path, err)
		}
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "build", Detail: "waiting for another build to finish (" + path + ")", Elapsed: time.Since(start)})
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// build compiles kube-apiserver and etcd into dir.
func build(ctx context.Context, version, dir string) error {
	start := time.Now()
	err := buildInto(ctx, dir, func(b builder, work, out string) error {
		km, err := b.kubernetesModule(version, work)
		if err != nil {
			return err
		}
		// Both modules are resolved first, so that the progress counts
		// every package of the build from the start.
		kube, err := b.kubernetesCommands(km, version, work, out, KubeAPIServer)
		if err != nil {
			return err
		}
		etcd, err := b.etcd(km.etcdVersion, work, out)
		if err != nil {
			return err
		}
		if err := b.compile(kube); err != nil {
			return err
		}
		return b.compile(etcd)
	})
	if err != nil {
		return err
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "build", Detail: "kube-apiserver and etcd built into " + dir, Elapsed: time.Since(start), Done: true})
	return nil
}

// BuildKubernetes builds the named commands of k8s.io/kubernetes at
// version (cmd/<name>: kubelet, kubeadm, ...) into dir, skipping those
// already there. It holds the build lock meanwhile.
func BuildKubernetes(ctx context.Context, version, dir string, names ...string) error {
	if !semver.IsValid(version) || semver.Major(version) != "v1" {
		return fmt.Errorf("kubernetes version %q: want a release such as %s", version, cluster.DefaultKubernetesVersion)
	}
	return buildMissing(ctx, dir, names, func(b builder, work, out string, missing []string) error {
		km, err := b.kubernetesModule(version, work)
		if err != nil {
			return err
		}
		m, err := b.kubernetesCommands(km, version, work, out, missing...)
		if err != nil {
			return err
		}
		return b.compile(m)
	})
}

// BuildEtcd builds etcd at version (v3.x.y) into dir, unless it is there.
func BuildEtcd(ctx context.Context, version, dir string) error {
	return buildMissing(ctx, dir, []string{Etcd}, func(b builder, work, out string, _ []string) error {
		m, err := b.etcd(version, work, out)
		if err != nil {
			return err
		}
		return b.compile(m)
	})
}

// BuildCommand builds the main package pkg of module mod at version into
// dir, named after the package's last path element, unless it is there.
func BuildCommand(ctx context.Context, mod, version, pkg, dir string) error {
	return buildMissing(ctx, dir, []string{path.Base(pkg)}, func(b builder, work, out string, _ []string) error {
		mf, err := b.moduleFile(mod, version, work)
		if err != nil {
			return err
		}
		name := path.Base(pkg)
		gomod := fmt.Sprintf("module anonlab.local/build/%s\n\ngo %s\n\nrequire %s %s\n", name, mf.Go.Version, mod, version)
		m, err := b.module(filepath.Join(work, name), gomod, tools(pkg), out, "-s -w", pkg)
		if err != nil {
			return err
		}
		return b.compile(m)
	})
}

// buildMissing runs fn, under the build lock, for the names not yet
// executable in dir, and moves what it built into dir.
func buildMissing(ctx context.Context, dir string, names []string, fn func(b builder, work, out string, missing []string) error) error {
	missing := func() []string {
		var m []string
		for _, name := range names {
			if executable(filepath.Join(dir, name)) != nil {
				m = append(m, name)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		return nil
	}
	root, err := CacheRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create cache %s: %w", root, err)
	}
	unlock, err := lock(ctx, filepath.Join(root, ".build.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	todo := missing() // another process may have built some meanwhile
	if len(todo) == 0 {
		return nil
	}
	start := time.Now()
	tmp := dir + ".tmp"
	err = buildInto(ctx, tmp, func(b builder, work, out string) error { return fn(b, work, out, todo) })
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range todo {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("install %s into %s: %w", name, dir, err)
		}
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "build", Detail: strings.Join(todo, ", ") + " built into " + dir, Elapsed: time.Since(start), Done: true})
	return nil
}

// buildInto runs fn in a scratch directory and renames its output
// directory to dir, which must not exist yet.
func buildInto(ctx context.Context, dir string, fn func(b builder, work, out string) error) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("build from source: the go command is needed: %w", err)
	}
	work, err := os.MkdirTemp("", "anonlab-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	if err := fn(builder{ctx: ctx, start: time.Now(), tally: newTally()}, work, out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(dir) // a leftover of an interrupted build
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("install binaries into %s: %w", dir, err)
	}
	return nil
}

// kubernetesModule is what a build module needs to require k8s.io/kubernetes.
type kubernetesModule struct {
	goVersion   string
	replaces    string // the staging modules, each replaced by its release
	etcdVersion string // the etcd client version it requires
}

// kubernetesModule reads k8s.io/kubernetes' go.mod at version. Its own
// go.mod replaces the staging modules by local paths, so a module that
// requires k8s.io/kubernetes must replace each of them by the matching
// v0.x.y release.
func (b builder) kubernetesModule(version, work string) (kubernetesModule, error) {
	kmod, err := b.moduleFile("k8s.io/kubernetes", version, work)
	if err != nil {
		return kubernetesModule{}, err
	}
	km := kubernetesModule{goVersion: kmod.Go.Version}
	staging := "v0" + strings.TrimPrefix(version, "v1")
	for _, r := range kmod.Replace {
		if strings.HasPrefix(r.New.Path, "./staging/") {
			km.replaces += fmt.Sprintf("\t%s => %s %s\n", r.Old.Path, r.Old.Path, staging)
		}
	}
	for _, r := range kmod.Require {
		if r.Mod.Path == "go.etcd.io/etcd/client/v3" {
			km.etcdVersion = r.Mod.Version
		}
	}
	if km.etcdVersion == "" {
		return kubernetesModule{}, fmt.Errorf("k8s.io/kubernetes %s does not require go.etcd.io/etcd/client/v3: cannot tell which etcd to build", version)
	}
	return km, nil
}

// kubernetesCommands prepares the build of cmd/<name> of k8s.io/kubernetes
// for each name into out, with the version variables set.
func (b builder) kubernetesCommands(km kubernetesModule, version, work, out string, names ...string) (buildModule, error) {
	minor := strings.TrimPrefix(semver.MajorMinor(version), "v1.")
	ldflags := "-s -w"
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ldflags += fmt.Sprintf(" -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=1 -X %[1]s.gitMinor=%[3]s -X %[1]s.gitTreeState=clean -X %[1]s.buildDate=%[4]s",
			pkg, version, minor, time.Now().UTC().Format(time.RFC3339))
	}
	var pkgs []string
	for _, name := range names {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+name)
	}
	gomod := fmt.Sprintf("module anonlab.local/build/kubernetes\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n%s)\n",
		km.goVersion, version, km.replaces)
	return b.module(filepath.Join(work, "kubernetes"), gomod, tools(pkgs...), out, ldflags, pkgs...)
}

// etcd prepares the build of etcd at version into out: its command is
// etcdmain.Main.
func (b builder) etcd(version, work, out string) (buildModule, error) {
	mf, err := b.moduleFile("go.etcd.io/etcd/server/v3", version, work)
	if err != nil {
		return buildModule{}, err
	}
	gomod := fmt.Sprintf("module anonlab.local/build/etcd\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 %s\n", mf.Go.Version, version)
	return b.module(filepath.Join(work, "etcd"), gomod,
		"package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n",
		out, "-s -w", ".")
}

// tools is the source of a file that only makes go mod tidy resolve pkgs.
func tools(pkgs ...string) string {
	src := "//go:build tools\n\npackage main\n\nimport (\n"
	for _, p := range pkgs {
		src += "\t_ \"" + p + "\"\n"
	}
	return src + ")\n"
}

type builder struct {
	ctx   context.Context
	start time.Time
	tally *tally
}

// moduleFile downloads mod@version and parses its go.mod.
func (b builder) moduleFile(mod, version, work string) (*modfile.File, error) {
	var info struct{ GoMod, Error string }
	out, err := b.goOutput(work, "mod", "download", "-json", mod+"@"+version)
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || info.Error != "" {
		return nil, fmt.Errorf("download %s@%s: %v %s", mod, version, err, info.Error)
	}
	data, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(info.GoMod, data, nil)
}

// buildModule is a build module written and resolved, its packages to
// compile counted.
type buildModule struct {
	dir, out, ldflags string
	pkgs, names       []string
	stale             map[string]string // from tally.add
}

// module writes a build module into dir, tidies it and counts the packages
// that building pkgs into out, each named after its last path element,
// will compile.
func (b builder) module(dir, gomod, source, out, ldflags string, pkgs ...string) (buildModule, error) {
	m := buildModule{dir: dir, out: out, ldflags: ldflags, pkgs: pkgs}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return m, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return m, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		return m, err
	}
	name := filepath.Base(dir)
	if err := b.stream(dir, "resolve "+name, "mod", "tidy"); err != nil {
		return m, err
	}
	for _, p := range pkgs {
		if p == "." {
			p = name
		}
		m.names = append(m.names, path.Base(p))
	}
	list, err := b.goOutput(dir, append([]string{"list", "-trimpath", "-deps", "-f", listFormat}, pkgs...)...)
	if err != nil {
		return m, fmt.Errorf("list the packages of %s: %w", strings.Join(m.names, ", "), err)
	}
	m.stale = b.tally.add(list)
	return m, nil
}

// compile builds a module that module prepared.
func (b builder) compile(m buildModule) error {
	b.tally.begin(m.stale)
	args := append([]string{"build", "-v", "-trimpath", "-ldflags", m.ldflags, "-o", m.out + string(filepath.Separator)}, m.pkgs...)
	return b.stream(m.dir, "build "+strings.Join(m.names, ", "), args...)
}

func (b builder) command(dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	return cmd
}

func (b builder) goOutput(dir string, args ...string) ([]byte, error) {
	cmd := b.command(dir, args...)
	cmd.Stderr = io.Discard
	return cmd.Output()
}

// stream runs go, reporting each output line as progress and keeping the
// tail for the error.
func (b builder) stream(dir, what string, args ...string) error {
	cmd := b.command(dir, args...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			b.tally.line(line)
			count, total, left := b.tally.state()
			cluster.ReportProgress(b.ctx, cluster.Progress{Phase: "build", Detail: what + ": " + line, Elapsed: time.Since(b.start),
				Count: count, Total: total, Left: left})
		}
	}()
	err := cmd.Wait()
	w.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%s (go %s): %w\n%s", what, strings.Join(args, " "), err, strings.Join(tail, "\n"))
	}
	return nil
}
