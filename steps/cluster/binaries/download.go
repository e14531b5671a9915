package binaries

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/mod/semver"
	"sigs.k8s.io/controller-runtime/tools/setup-envtest/remote"
	"sigs.k8s.io/controller-runtime/tools/setup-envtest/versions"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Where Resolve gets binaries the cache does not have (--binaries-source).
const (
	// SourceAuto downloads, and builds when the index or the archive
	// cannot be reached.
	SourceAuto = "auto"
	// SourceDownload only downloads envtest's released binaries.
	SourceDownload = "download"
	// SourceBuild only builds from the Go module sources.
	SourceBuild = "build"
)

// Sources lists the values --binaries-source accepts.
var Sources = []string{SourceAuto, SourceDownload, SourceBuild}

// Environment variables read when no option says otherwise.
const (
	SourceEnv = "ANONLAB_BINARIES_SOURCE"
	IndexEnv  = "ANONLAB_ENVTEST_INDEX"
)

// DefaultIndexURL is setup-envtest's index: envtest-releases.yaml of
// kubernetes-sigs/controller-tools.
var DefaultIndexURL = remote.DefaultIndexURL

// Kubectl comes in the envtest archive too; the attendee can type with it.
const Kubectl = "kubectl"

// Network waits: an unreachable index or archive host must turn into a
// build within 5 s (issue 12), a stalled download must not hang forever.
const (
	reachTimeout = 3 * time.Second
	stallTimeout = 30 * time.Second
)

// WithSource sets where missing binaries come from: SourceAuto (default:
// $ANONLAB_BINARIES_SOURCE, else auto), SourceDownload or SourceBuild.
func WithSource(source string) Option { return func(o *options) { o.source = source } }

// WithIndexURL sets the envtest index to download from (default:
// $ANONLAB_ENVTEST_INDEX, else DefaultIndexURL), e.g. a mirror's.
func WithIndexURL(url string) Option { return func(o *options) { o.indexURL = url } }

// DefaultSource is $ANONLAB_BINARIES_SOURCE, else SourceAuto.
func DefaultSource() string {
	if s := os.Getenv(SourceEnv); s != "" {
		return s
	}
	return SourceAuto
}

// ValidSource says whether source is one of Sources.
func ValidSource(source string) error {
	for _, s := range Sources {
		if s == source {
			return nil
		}
	}
	return fmt.Errorf("binaries source %q: want one of %s", source, strings.Join(Sources, ", "))
}

// UnreachableError is a download that failed because the index or the
// archive could not be fetched; auto builds instead.
type UnreachableError struct {
	What string // "index" or "archive"
	URL  string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("envtest %s %s cannot be reached: %v", e.What, e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ChecksumError is an archive whose SHA-512 is not the index's. Nothing
// was unpacked; auto does not build instead: someone served other bytes.
type ChecksumError struct {
	Archive, Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: the index says sha512 %s, the archive downloaded has sha512 %s; nothing installed", e.Archive, e.Want, e.Got)
}

// obtain puts kube-apiserver and etcd into dir from source; the caller
// holds the build lock.
func obtain(ctx context.Context, o options, version, dir string) error {
	src := filepath.Join(filepath.Dir(dir), "src")
	if o.source == SourceBuild {
		return build(ctx, version, dir, src)
	}
	if ControllerManagerNeeded(version) {
		if o.source == SourceDownload {
			return fmt.Errorf("kubernetes %s: envtest's releases have no kube-controller-manager, which the lab runs before 1.24: use --binaries-source build (or auto)", version)
		}
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "download", Detail: "envtest's releases have no kube-controller-manager, which the lab runs before 1.24: building from source", Done: true})
		return build(ctx, version, dir, src)
	}
	start := time.Now()
	err := download(ctx, o.indexURL, version, dir)
	var unreachable *UnreachableError
	if o.source == SourceDownload || !errors.As(err, &unreachable) {
		return err
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "download", Detail: err.Error() + ": building from source instead", Elapsed: time.Since(start), Done: true})
	return build(ctx, version, dir, src)
}

// download fetches the envtest release of version for this platform
// through setup-envtest's remote client, checks its SHA-512 against the
// index before anything is unpacked (here rather than by the client, to
// tell a mismatch from a network error), and installs kube-apiserver, etcd
// and kubectl into dir in one rename (swap), so that dir is complete only
// once all are there.
func download(ctx context.Context, indexURL, version, dir string) error {
	start := time.Now()
	if semver.Prerelease(version) != "" || semver.Build(version) != "" {
		return &UnreachableError{What: "archive", URL: "for " + version, Err: errors.New("envtest releases no pre-releases")}
	}
	var ver versions.Concrete
	if _, err := fmt.Sscanf(version, "v%d.%d.%d", &ver.Major, &ver.Minor, &ver.Patch); err != nil {
		return fmt.Errorf("kubernetes version %q: %w", version, err)
	}
	client := &remote.HTTPClient{Log: logr.Discard(), IndexURL: indexURL}
	item := versions.PlatformItem{Platform: versions.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}}
	name := item.ArchiveName(ver)
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "download", Detail: "reading the envtest index " + indexURL})

	ictx, cancel := context.WithTimeout(ctx, reachTimeout)
	sets, err := client.ListVersions(ictx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{What: "index", URL: indexURL, Err: shorten(err, ictx)}
	}
	var want string
	for _, set := range sets {
		for _, p := range set.Platforms {
			if set.Version == ver && p.Platform == item.Platform && p.Hash != nil {
				want = p.Value
			}
		}
	}
	if want == "" {
		return &UnreachableError{What: "archive", URL: name, Err: errors.New("not listed in the index " + indexURL)}
	}

	root := filepath.Dir(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create cache %s: %w", root, err)
	}
	removeLeftovers(root)
	f, err := os.CreateTemp(root, "."+name+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	w := &watchedWriter{f: f, sum: sha512.New(), progress: func(n int64) {
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "download", Detail: fmt.Sprintf("%s: %.1f MB", name, float64(n)/1e6), Elapsed: time.Since(start)})
	}}
	dctx, stalled := w.watch(ctx)
	err = client.GetVersion(dctx, ver, item, w)
	stall := stalled()
	switch {
	case w.err != nil:
		return fmt.Errorf("write %s: %w", f.Name(), w.err)
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		if stall != "" {
			err = errors.New(stall)
		} else if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		return &UnreachableError{What: "archive", URL: name + " (listed in " + indexURL + ")", Err: err}
	}
	if got := hex.EncodeToString(w.sum.Sum(nil)); got != want {
		return &ChecksumError{Archive: name, Want: want, Got: got}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := unpack(f, name, dir); err != nil {
		return err
	}
	cluster.ReportProgress(ctx, cluster.Progress{Phase: "download", Detail: fmt.Sprintf("%s (sha512 checked against the index) unpacked into %s", name, dir), Elapsed: time.Since(start), Done: true})
	return nil
}

// shorten names a timeout for what it is rather than as a context error,
// and drops the client's wrapping that repeats the URL.
func shorten(err error, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", reachTimeout)
	}
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// removeLeftovers removes what a killed download or Install left in the
// cache root: archives and scratch directories. The caller holds the lock, so no
// other download is using them.
func removeLeftovers(root string) {
	for _, pattern := range []string{".envtest-v*.tar.gz-*", ".v*.download-*", ".v*.install-*"} {
		old, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range old {
			_ = os.RemoveAll(f)
		}
	}
}

// unpack installs the archive's kube-apiserver, etcd and kubectl (under
// controller-tools/envtest/) into dir through a scratch directory beside it.
func unpack(r io.Reader, name, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	found := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		base := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || (base != KubeAPIServer && base != Etcd && base != Kubectl) {
			continue
		}
		out, err := os.OpenFile(filepath.Join(tmp, base), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s from %s: %w", h.Name, name, err)
		}
		found[base] = true
	}
	for _, need := range []string{KubeAPIServer, Etcd} {
		if !found[need] {
			return fmt.Errorf("%s has no %s: nothing installed", name, need)
		}
	}
	return swap(tmp, dir)
}

// watchedWriter writes the archive to its file and its hash, and cancels
// the download when no byte came for too long: reachTimeout before the
// first (the host does not answer), stallTimeout after.
type watchedWriter struct {
	f        *os.File
	sum      hash.Hash
	progress func(n int64)
	err      error

	mu     sync.Mutex
	n      int64
	last   time.Time
	report time.Time
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.sum.Write(p[:n])
	if err != nil {
		w.err = err
		return n, err
	}
	w.mu.Lock()
	w.n += int64(n)
	w.last = time.Now()
	total, due := w.n, w.last.Sub(w.report) >= time.Second
	if due {
		w.report = w.last
	}
	w.mu.Unlock()
	if due {
		w.progress(total)
	}
	return n, nil
}

// watch returns the context to download with and a function that, once
// the download returned, says why the watch cancelled it ("" if it did not).
func (w *watchedWriter) watch(ctx context.Context) (context.Context, func() string) {
	ctx, cancel := context.WithCancel(ctx)
	var why string
	done := make(chan struct{})
	stopped := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				w.mu.Lock()
				n, last := w.n, w.last
				w.mu.Unlock()
				if n == 0 && now.Sub(began) > reachTimeout {
					why = fmt.Sprintf("no answer within %s", reachTimeout)
				} else if n > 0 && now.Sub(last) > stallTimeout {
					why = fmt.Sprintf("the download stalled for %s after %d bytes", stallTimeout, n)
				}
				if why != "" {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() string {
		close(done)
		<-stopped
		cancel()
		return why
	}
}
