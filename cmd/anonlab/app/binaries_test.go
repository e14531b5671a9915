package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/binaries/binariestest"
)

// emptyCache points the user cache at an empty directory, with no
// binaries directory or source named in the environment, and returns
// where the cache's Kubernetes version directory will be.
func emptyCache(t *testing.T, version string) string {
	t.Helper()
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	if runtime.GOOS == "darwin" { // os.UserCacheDir is ~/Library/Caches there
		t.Setenv("HOME", cache)
	}
	for _, env := range []string{"ANONLAB_BINARIES_DIR", "KUBEBUILDER_ASSETS", binaries.SourceEnv} {
		t.Setenv(env, "")
	}
	root, err := binaries.CacheRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(root, cache) {
		t.Fatalf("cache root %s is not under the empty cache %s", root, cache)
	}
	return filepath.Join(root, version)
}

// noGo makes a fallback build fail at once (no go command on $PATH)
// instead of building Kubernetes for 15 minutes.
func noGo(t *testing.T) { t.Setenv("PATH", t.TempDir()) }

// TestBinariesDownload is the "must show": a loopback server
// serves an envtest index and an archive made from the lab's own
// binaries; `anonlab binaries` with ANONLAB_ENVTEST_INDEX pointing at it
// downloads, verifies and installs them into an empty cache, and a lab
// then runs on them (BenchmarkDownload times the download).
func TestBinariesDownload(t *testing.T) {
	needCluster(t)
	version := cluster.DefaultKubernetesVersion
	real, err := binaries.Resolve(context.Background(), version)
	if err != nil {
		t.Fatal(err)
	}
	files := binariestest.FilesIn(t, real)
	srv := binariestest.NewServer(t, version, files)
	dir := emptyCache(t, version)
	t.Setenv(binaries.IndexEnv, srv.IndexURL)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())

	code, out, errOut := run(t, "binaries", "--kubernetes-version", version)
	if code != ExitOK {
		t.Fatalf("anonlab binaries: exit %d\n%s", code, errOut)
	}
	if got := strings.TrimSpace(out); got != dir {
		t.Errorf("anonlab binaries printed %q, want %s", got, dir)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s in the cache: %d bytes, err %v; want the served %d bytes", name, len(got), err, len(data))
		}
	}
	if !strings.Contains(errOut, srv.Archive+" (sha512 checked against the index) unpacked into "+dir) || strings.Contains(errOut, "building from source") {
		t.Errorf("stderr does not say the checked archive was unpacked (or says it built):\n%s", errOut)
	}

	code, out, errOut = run(t, "run", "anonymous-auth", "--backend", "local", "--output", "json", "--lang", "en")
	if code != ExitOK {
		t.Fatalf("anonlab run on the downloaded binaries: exit %d\nstderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	if n := srv.ArchiveRequests(); n != 1 {
		t.Errorf("archive fetched %d times, want once (the run uses the cache)", n)
	}
}

// TestBinariesTampered: a tampered archive is refused with both
// checksums, nothing is installed and nothing is built.
func TestBinariesTampered(t *testing.T) {
	version := cluster.DefaultKubernetesVersion
	srv := binariestest.NewServer(t, version, binariestest.Stubs(), binariestest.Tampered())
	dir := emptyCache(t, version)
	t.Setenv(binaries.IndexEnv, srv.IndexURL)
	noGo(t)
	code, _, errOut := run(t, "binaries", "--kubernetes-version", version)
	if code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	for _, want := range []string{"checksum mismatch for " + srv.Archive, srv.Sum, srv.Served, "nothing installed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not show %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "building from source") || strings.Contains(errOut, "go command") {
		t.Errorf("a checksum mismatch led to a build:\n%s", errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused archive (err %v)", dir, err)
	}
}

// TestBinariesFallback: with the index unreachable, auto says so in one
// line and builds (here the build fails at once: no go on $PATH); with
// --binaries-source download it fails with the reason and builds nothing.
// BenchmarkFallback times it against its 5 s budget.
func TestBinariesFallback(t *testing.T) {
	version := cluster.DefaultKubernetesVersion
	emptyCache(t, version)
	index := binariestest.Silent(t)
	t.Setenv(binaries.IndexEnv, index)
	noGo(t)

	code, _, errOut := run(t, "binaries", "--kubernetes-version", version)
	var lines []string
	for _, l := range strings.Split(errOut, "\n") {
		if strings.Contains(l, "building from source instead") {
			lines = append(lines, l)
		}
	}
	if code != ExitFailed || len(lines) != 1 || !strings.Contains(lines[0], "envtest index "+index+" cannot be reached: no answer within 3s") ||
		!strings.Contains(errOut, "the go command is needed") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1, one line saying the index %s cannot be reached and the build is next, then the build's error", code, errOut, index)
	}

	code, _, errOut = run(t, "binaries", "--kubernetes-version", version, "--binaries-source", "download")
	if code != ExitFailed || !strings.Contains(errOut, "envtest index "+index+" cannot be reached") || strings.Contains(errOut, "building from source") || strings.Contains(errOut, "go command") {
		t.Errorf("--binaries-source download: exit %d, stderr:\n%s\nwant exit 1 with the reason and no build", code, errOut)
	}
}

// TestBinariesSourceFlag: every command that may need the binaries takes
// --binaries-source and refuses a value it does not know before anything
// starts; $ANONLAB_BINARIES_SOURCE is its default.
func TestBinariesSourceFlag(t *testing.T) {
	for _, args := range [][]string{
		{"binaries"},
		{"run", "anonymous-auth", "--backend", "local"},
		{"tui", "anonymous-auth", "--backend", "local"},
		{"matrix", "anonymous-auth"},
	} {
		code, _, errOut := run(t, append(args, "--binaries-source", "mirror")...)
		if code != ExitBadUsage || !strings.Contains(errOut, `--binaries-source: binaries source "mirror": want one of auto, download, build`) {
			t.Errorf("anonlab %s --binaries-source mirror: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	t.Setenv(binaries.SourceEnv, "build")
	_, out, _ := run(t, "binaries", "--help")
	if !strings.Contains(out, `(default "build")`) {
		t.Errorf("with %s=build, --help does not show it as the default:\n%s", binaries.SourceEnv, out)
	}
}
