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
	"slices"
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
	// KubeControllerManager is needed only for releases that make
	// ServiceAccount token Secrets (see ControllerManagerNeeded).
	KubeControllerManager = "kube-controller-manager"
)

// ControllerManagerNeeded says whether the local backend must run
// kube-controller-manager for version: before 1.24 the ServiceAccount
// token Secrets the article reads are made by its token controller.
func ControllerManagerNeeded(version string) bool {
	return semver.IsValid(version) && semver.Compare(version, "v1.24.0") < 0
}

// Commands are the executables a binaries directory for version holds.
func Commands(version string) []string {
	names := []string{KubeAPIServer, Etcd}
	if ControllerManagerNeeded(version) {
		names = append(names, KubeControllerManager)
	}
	return names
}

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

// Resolve returns a directory holding kube-apiserver and etcd for version
// (and kube-controller-manager when ControllerManagerNeeded):
// the explicit directory if one is given, else the cache, else it
// downloads or builds them into the cache (see WithSource), reporting
// progress through ctx (see cluster.WithProgress).
func Resolve(ctx context.Context, version string, opts ...Option) (string, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dir != "" {
		if err := complete(o.dir, version); err != nil {
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
	if complete(dir, version) == nil {
		return dir, nil
	}
	unlock, err := lockCache(ctx, root)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have installed it while we waited for the lock.
	if complete(dir, version) == nil {
		return dir, nil
	}
	if err := obtain(ctx, o, version, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func complete(dir, version string) error {
	for _, name := range Commands(version) {
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

// lockCache creates the cache root and takes its build lock.
func lockCache(ctx context.Context, root string) (func(), error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create cache %s: %w", root, err)
	}
	return lock(ctx, filepath.Join(root, ".build.lock"))
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

// build compiles Commands(version) into dir; src holds the module copies
// old releases need (see generateOpenAPI).
func build(ctx context.Context, version, dir, src string) error {
	start := time.Now()
	names := slices.DeleteFunc(Commands(version), func(n string) bool { return n == Etcd })
	err := buildInto(ctx, dir, src, func(b builder, work, out string) error {
		km, err := b.kubernetesModule(version, work)
		if err != nil {
			return err
		}
		// Both modules are resolved first, so that the progress counts
		// every package of the build from the start.
		kube, err := b.kubernetesCommands(km, version, work, out, names...)
		if err != nil {
			return err
		}
		etcd, err := b.etcd(km.etcdModule, km.etcdVersion, work, out)
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
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "build", Detail: strings.Join(Commands(version), ", ") + " built into " + dir, Elapsed: time.Since(start), Done: true})
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
		m, err := b.etcd(etcdServer, version, work, out)
		if err != nil {
			return err
		}
		return b.compile(m)
	})
}

// BuildCommand builds the main package pkg of module mod at version into
// dir, named after the package's last path element, unless it is there.
func BuildCommand(ctx context.Context, mod, version, pkg, dir string) error {
	return buildWith(ctx, mod, version, path.Base(pkg), toolsSource(pkg), pkg, dir)
}

// BuildMain builds source, a main package that uses module mod at version,
// into dir as name, unless it is there.
func BuildMain(ctx context.Context, mod, version, name, source, dir string) error {
	return buildWith(ctx, mod, version, name, source, ".", dir)
}

// buildWith builds pkg of a build module named name that requires mod at
// version and holds source, into dir as name, unless it is there.
func buildWith(ctx context.Context, mod, version, name, source, pkg, dir string) error {
	return buildMissing(ctx, dir, []string{name}, func(b builder, work, out string, _ []string) error {
		mf, err := b.moduleFile(mod, version, work)
		if err != nil {
			return err
		}
		gomod := fmt.Sprintf("module anonlab.local/build/%s\n\ngo %s\n\nrequire %s %s\n", name, mf.Go.Version, mod, version)
		m, err := b.module(filepath.Join(work, name), gomod, source, out, "-s -w", pkg)
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
	unlock, err := lockCache(ctx, root)
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
	err = buildInto(ctx, tmp, filepath.Join(root, "src"), func(b builder, work, out string) error { return fn(b, work, out, todo) })
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
func buildInto(ctx context.Context, dir, src string, fn func(b builder, work, out string) error) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("build from source: the go command is needed: %w", err)
	}
	work, err := os.MkdirTemp("", "anonlab-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	if err := fn(builder{ctx: ctx, start: time.Now(), tally: newTally(), src: src}, work, out); err != nil {
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
	goVersion      string
	dir            string   // the module's directory in the module cache
	replaces       string   // the staging modules, each replaced by its release
	staging        []string // the staging modules' paths
	stagingVersion string
	openAPIVersion string // the k8s.io/kube-openapi it requires
	// The etcd it was tested with: the server module of the etcd client
	// it requires (go.etcd.io/etcd/server/v3 from 1.22 on; before, the one
	// go.etcd.io/etcd module, 3.4.x: 3.4.13 for 1.20.2), at that version.
	etcdModule, etcdVersion string
}

// The etcd modules whose etcdmain package is etcd's command.
const (
	etcdServer = "go.etcd.io/etcd/server/v3" // 3.5 on; etcdmain.Main(args)
	etcdLegacy = "go.etcd.io/etcd"           // 3.4 and before; etcdmain.Main()
)

// kubernetesModule reads k8s.io/kubernetes' go.mod at version. Its own
// go.mod replaces the staging modules by local paths, so a module that
// requires k8s.io/kubernetes must replace each of them by the matching
// v0.x.y release.
func (b builder) kubernetesModule(version, work string) (kubernetesModule, error) {
	kmod, dir, err := b.download("k8s.io/kubernetes", version, work)
	if err != nil {
		return kubernetesModule{}, err
	}
	km := kubernetesModule{goVersion: kmod.Go.Version, dir: dir, stagingVersion: "v0" + strings.TrimPrefix(version, "v1")}
	for _, r := range kmod.Replace {
		if strings.HasPrefix(r.New.Path, "./staging/") {
			km.replaces += fmt.Sprintf("\t%s => %s %s\n", r.Old.Path, r.Old.Path, km.stagingVersion)
			km.staging = append(km.staging, r.Old.Path)
		}
	}
	for _, r := range kmod.Require {
		switch r.Mod.Path {
		case "go.etcd.io/etcd/client/v3":
			km.etcdModule, km.etcdVersion = etcdServer, r.Mod.Version
		case etcdLegacy:
			km.etcdModule, km.etcdVersion = etcdLegacy, r.Mod.Version
		case "k8s.io/kube-openapi":
			km.openAPIVersion = r.Mod.Version
		}
	}
	if km.etcdVersion == "" {
		return kubernetesModule{}, fmt.Errorf("k8s.io/kubernetes %s requires neither go.etcd.io/etcd/client/v3 nor go.etcd.io/etcd: cannot tell which etcd to build", version)
	}
	return km, nil
}

// kubernetesCommands prepares the build of cmd/<name> of k8s.io/kubernetes
// for each name into out, with the version variables set. A release whose
// module lacks its generated OpenAPI definitions is built from a copy that
// has them (generateOpenAPI); one that resolves a dependency older than a
// pin gets the pinned version, recorded in out/pins.txt.
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
	replaces, src, complete := km.replaces, "", true
	if _, err := os.Stat(filepath.Join(km.dir, openAPIFile)); err != nil {
		src = filepath.Join(b.src, "k8s.io", "kubernetes@"+version)
		var err error
		if complete, err = sourceCopy(km.dir, src); err != nil {
			return buildModule{}, err
		}
		replaces += fmt.Sprintf("\tk8s.io/kubernetes => %s\n", src)
	}
	gomod := func(replaces string) string {
		return fmt.Sprintf("module anonlab.local/build/kubernetes\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n%s)\n", km.goVersion, version, replaces)
	}
	dir := filepath.Join(work, "kubernetes")
	if err := b.prepare(dir, gomod(replaces), toolsSource(pkgs...)); err != nil {
		return buildModule{}, err
	}
	pinned, applied, err := b.applyPins(dir)
	if err != nil {
		return buildModule{}, err
	}
	if len(applied) > 0 {
		for _, p := range applied {
			cluster.ReportProgress(b.ctx, cluster.Progress{Phase: "pin", Detail: p, Elapsed: time.Since(b.start)})
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return buildModule{}, err
		}
		if err := os.WriteFile(filepath.Join(out, appliedPins), []byte(strings.Join(applied, "\n")+"\n"), 0o644); err != nil {
			return buildModule{}, err
		}
		replaces += pinned
	}
	if !complete {
		if err := b.generateOpenAPI(km, dir, src, work); err != nil {
			return buildModule{}, err
		}
	}
	if len(applied) > 0 || !complete {
		// The pins change the module graph, and the generated file imports
		// packages the build had not needed yet.
		if err := b.prepare(dir, gomod(replaces), toolsSource(pkgs...)); err != nil {
			return buildModule{}, err
		}
	}
	return b.counted(dir, out, ldflags, pkgs...)
}

// etcd prepares the build of etcd from module mod (etcdServer or
// etcdLegacy) at version into out: its command is etcdmain.Main.
func (b builder) etcd(mod, version, work, out string) (buildModule, error) {
	mf, err := b.moduleFile(mod, version, work)
	if err != nil {
		return buildModule{}, err
	}
	gomod := fmt.Sprintf("module anonlab.local/build/etcd\n\ngo %s\n\nrequire %s %s\n", mf.Go.Version, mod, version)
	main := "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"
	if mod == etcdLegacy {
		main = "package main\n\nimport \"go.etcd.io/etcd/etcdmain\"\n\nfunc main() { etcdmain.Main() }\n"
	}
	return b.module(filepath.Join(work, "etcd"), gomod, main, out, "-s -w", ".")
}

// toolsSource is the source of a file that only makes go mod tidy resolve pkgs.
func toolsSource(pkgs ...string) string {
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
	src   string // where module copies are kept (see generateOpenAPI)
}

// moduleFile downloads mod@version and parses its go.mod.
func (b builder) moduleFile(mod, version, work string) (*modfile.File, error) {
	mf, _, err := b.download(mod, version, work)
	return mf, err
}

// download downloads mod@version and returns its parsed go.mod and its
// directory in the module cache.
func (b builder) download(mod, version, work string) (*modfile.File, string, error) {
	var info struct{ GoMod, Dir, Error string }
	out, err := b.goOutput(work, "mod", "download", "-json", mod+"@"+version)
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || info.Error != "" {
		return nil, "", fmt.Errorf("download %s@%s: %v %s", mod, version, err, info.Error)
	}
	data, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, "", err
	}
	mf, err := modfile.Parse(info.GoMod, data, nil)
	return mf, info.Dir, err
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
	if err := b.prepare(dir, gomod, source); err != nil {
		return buildModule{dir: dir}, err
	}
	return b.counted(dir, out, ldflags, pkgs...)
}

// prepare writes a build module into dir and tidies it.
func (b builder) prepare(dir, gomod, source string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		return err
	}
	return b.stream(dir, "resolve "+filepath.Base(dir), "mod", "tidy")
}

// counted counts the packages that building pkgs of the prepared module in
// dir into out will compile.
func (b builder) counted(dir, out, ldflags string, pkgs ...string) (buildModule, error) {
	m := buildModule{dir: dir, out: out, ldflags: ldflags, pkgs: pkgs}
	name := filepath.Base(dir)
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
	return b.exe(dir, "go", args...)
}

// exe is a command run in dir with go's build environment.
func (b builder) exe(dir, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, exe, args...)
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
	return b.follow(b.command(dir, args...), what, args)
}

// run runs the executable exe like stream, with go's environment.
func (b builder) run(dir, what, exe string, args ...string) error {
	return b.follow(b.exe(dir, exe, args...), what, args)
}

func (b builder) follow(cmd *exec.Cmd, what string, args []string) error {
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
		return fmt.Errorf("%s (%s %s): %w\n%s", what, filepath.Base(cmd.Path), strings.Join(args, " "), err, strings.Join(tail, "\n"))
	}
	return nil
}
