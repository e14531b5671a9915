package binaries_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/binaries/binariestest"
)

const version = "v1.37.2"

// recorder keeps the progress reports of a Resolve.
type recorder struct {
	mu  sync.Mutex
	all []cluster.Progress
}

func (r *recorder) ctx() context.Context {
	return cluster.WithProgress(context.Background(), func(p cluster.Progress) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.all = append(r.all, p)
	})
}

// last is the last report of phase marked Done.
func (r *recorder) last(phase string) (cluster.Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if p := r.all[i]; p.Phase == phase && p.Done {
			return p, true
		}
	}
	return cluster.Progress{}, false
}

// cacheEntries lists the cache root: only the lock and what was installed.
func cacheEntries(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// noGo makes a fallback build fail at once ("the go command is needed")
// instead of building Kubernetes.
func noGo(t *testing.T) { t.Setenv("PATH", t.TempDir()) }

func TestDownloadInstalls(t *testing.T) {
	noGo(t)
	srv := binariestest.NewServer(t, version, binariestest.Stubs())
	root := t.TempDir()
	// What a killed download leaves: its archive and scratch directory.
	if err := os.WriteFile(filepath.Join(root, "."+srv.Archive+"-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "."+version+".download-456", "etcd"), 0o755); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	dir, err := binaries.Resolve(rec.ctx(), version, binaries.WithCacheDir(root), binaries.WithSource(binaries.SourceDownload), binaries.WithIndexURL(srv.IndexURL))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, version); dir != want {
		t.Errorf("dir %s, want %s", dir, want)
	}
	for _, name := range []string{binaries.KubeAPIServer, binaries.Etcd, binaries.Kubectl} {
		file := filepath.Join(dir, name)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if want := "#!/bin/sh\necho " + name + "\n"; string(data) != want {
			t.Errorf("%s holds %q, want %q", name, data, want)
		}
		if fi, _ := os.Stat(file); fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable: %s", name, fi.Mode())
		}
	}
	if got, want := cacheEntries(t, root), []string{".build.lock", version}; !slices.Equal(got, want) {
		t.Errorf("cache holds %q, want %q (no archive or scratch directory left, nor an earlier killed download's)", got, want)
	}
	done, ok := rec.last("download")
	if !ok || !strings.Contains(done.Detail, srv.Archive) || !strings.Contains(done.Detail, "sha512") {
		t.Errorf("last download report %+v, want one naming %s and its checked sha512", done, srv.Archive)
	}
	// Cached now: a second Resolve fetches nothing.
	if _, err := binaries.Resolve(context.Background(), version, binaries.WithCacheDir(root), binaries.WithSource(binaries.SourceDownload), binaries.WithIndexURL(srv.IndexURL)); err != nil {
		t.Fatal(err)
	}
	if n := srv.ArchiveRequests(); n != 1 {
		t.Errorf("archive fetched %d times, want 1", n)
	}
}

// TestDownloadChecksumMismatch: a tampered archive is refused with both
// checksums, nothing is installed, and auto does not build instead.
func TestDownloadChecksumMismatch(t *testing.T) {
	noGo(t)
	srv := binariestest.NewServer(t, version, binariestest.Stubs(), binariestest.Tampered())
	root := t.TempDir()
	var rec recorder
	_, err := binaries.Resolve(rec.ctx(), version, binaries.WithCacheDir(root), binaries.WithSource(binaries.SourceAuto), binaries.WithIndexURL(srv.IndexURL))
	var mismatch *binaries.ChecksumError
	if !errors.As(err, &mismatch) {
		t.Fatalf("error %v, want a checksum mismatch", err)
	}
	for _, sum := range []string{srv.Sum, srv.Served} {
		if !strings.Contains(err.Error(), sum) {
			t.Errorf("error %q does not show sha512 %s", err, sum)
		}
	}
	if srv.Sum == srv.Served {
		t.Fatal("the tampered archive has the index's checksum")
	}
	if got, want := cacheEntries(t, root), []string{".build.lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %q after a mismatch, want only %q", got, want)
	}
	if _, built := rec.last("download"); built {
		t.Error("auto reported a fallback to the build after a checksum mismatch")
	}
}

// TestAutoFallsBack: with the index or the archive out of reach, auto says
// why in one report and builds (here: fails at once, for want of go)
// within 5 s; download alone fails with the same reason.
func TestAutoFallsBack(t *testing.T) {
	noGo(t)
	srv := binariestest.NewServer(t, version, binariestest.Stubs())
	silent := binariestest.NewServer(t, version, binariestest.Stubs(), binariestest.SilentArchive())
	for _, tc := range []struct {
		name, index, version, what string
	}{
		{"index never answers", binariestest.Silent(t), version, "index"},
		{"index refused", "http://127.0.0.1:1/envtest-releases.yaml", version, "index"},
		{"no archive for the version", srv.IndexURL, "v1.36.0", "archive"},
		{"archive missing", srv.IndexURL, "v1.35.0", "archive"},
		{"pre-release", srv.IndexURL, "v1.37.0-rc.1", "archive"},
		{"archive never answers", silent.IndexURL, version, "archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits up to 3 s twice
			root := t.TempDir()
			var rec recorder
			start := time.Now()
			_, err := binaries.Resolve(rec.ctx(), tc.version, binaries.WithCacheDir(root), binaries.WithIndexURL(tc.index), binaries.WithSource(binaries.SourceAuto))
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "the go command is needed") {
				t.Fatalf("error %v, want the build's (no go on PATH)", err)
			}
			if took > 5*time.Second {
				t.Errorf("fell back after %s, want ≤ 5s", took.Round(time.Millisecond))
			}
			p, ok := rec.last("download")
			if !ok || !strings.Contains(p.Detail, "envtest "+tc.what) || !strings.Contains(p.Detail, "cannot be reached") || !strings.HasSuffix(p.Detail, "building from source instead") || strings.Contains(p.Detail, "\n") {
				t.Errorf("fallback report %+v, want one line saying the %s cannot be reached and that it builds instead", p, tc.what)
			}

			_, err = binaries.Resolve(context.Background(), tc.version, binaries.WithCacheDir(root), binaries.WithIndexURL(tc.index), binaries.WithSource(binaries.SourceDownload))
			var unreachable *binaries.UnreachableError
			if !errors.As(err, &unreachable) || unreachable.What != tc.what {
				t.Errorf("download only: error %v, want the %s unreachable", err, tc.what)
			}
		})
	}
}

func TestSourceChecked(t *testing.T) {
	_, err := binaries.Resolve(context.Background(), version, binaries.WithCacheDir(t.TempDir()), binaries.WithSource("mirror"))
	if err == nil || !strings.Contains(err.Error(), `"mirror"`) || !strings.Contains(err.Error(), "auto, download, build") {
		t.Errorf("error %v, want one naming the bad source and the good ones", err)
	}
}

// TestSourceFromEnv: $ANONLAB_BINARIES_SOURCE and $ANONLAB_ENVTEST_INDEX
// apply when no option is given.
func TestSourceFromEnv(t *testing.T) {
	noGo(t)
	srv := binariestest.NewServer(t, version, binariestest.Stubs())
	t.Setenv(binaries.SourceEnv, binaries.SourceDownload)
	t.Setenv(binaries.IndexEnv, srv.IndexURL)
	if _, err := binaries.Resolve(context.Background(), version, binaries.WithCacheDir(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	if srv.ArchiveRequests() != 1 {
		t.Errorf("archive fetched %d times, want 1 (from $%s)", srv.ArchiveRequests(), binaries.IndexEnv)
	}
	t.Setenv(binaries.SourceEnv, binaries.SourceBuild)
	_, err := binaries.Resolve(context.Background(), version, binaries.WithCacheDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "the go command is needed") || srv.ArchiveRequests() != 1 {
		t.Errorf("with %s=build: error %v and %d archive requests, want the build's error and no download", binaries.SourceEnv, err, srv.ArchiveRequests())
	}
}

// TestDownloadsTakeTheLock: two installs at once into one cache do not
// race: the second waits for the lock and finds the first's binaries.
func TestDownloadsTakeTheLock(t *testing.T) {
	srv := binariestest.NewServer(t, version, binariestest.Stubs())
	root := t.TempDir()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := binaries.Resolve(context.Background(), version, binaries.WithCacheDir(root), binaries.WithSource(binaries.SourceDownload), binaries.WithIndexURL(srv.IndexURL))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := srv.ArchiveRequests(); n != 1 {
		t.Errorf("archive fetched %d times by two concurrent installs, want 1", n)
	}
}
