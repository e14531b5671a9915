package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// RequireBinaries returns a directory holding kube-apiserver and etcd:
// $ANONLAB_BINARIES_DIR, else the cache's for the default version; it never
// builds them. Under CI=true their absence fails the test; elsewhere, and
// with -short, the test is skipped, saying why.
func RequireBinaries(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts etcd and kube-apiserver: run without -short")
	}
	dir := os.Getenv("ANONLAB_BINARIES_DIR")
	if dir == "" {
		root, err := binaries.CacheRoot()
		if err != nil {
			tb.Fatal(err)
		}
		dir = filepath.Join(root, cluster.DefaultKubernetesVersion)
	}
	dir, err := binaries.Resolve(context.Background(), cluster.DefaultKubernetesVersion, binaries.WithDir(dir))
	if err == nil {
		return dir
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("the local backend cannot be tested on this machine: %v (make binaries)", err)
	}
	tb.Skipf("skipped (under CI=true this fails): %v; make binaries builds them", err)
	return ""
}

// TestBindFailed reads the last error line of real logs, recorded from
// etcd and kube-apiserver v1.37.2 started on a port another process held,
// and of other failures that must not be taken for a taken port.
func TestBindFailed(t *testing.T) {
	cases := []struct {
		log  string
		want bool
	}{
		{"etcd-client-port-taken.log", true},
		{"etcd-peer-port-taken.log", true},
		{"kube-apiserver-port-taken.log", true},
		{"kube-apiserver-unknown-flag.log", false},
		{"etcd-unknown-flag.log", false},
	}
	for _, tc := range cases {
		t.Run(tc.log, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", tc.log))
			if err != nil {
				t.Fatal(err)
			}
			line := cluster.LastErrorLine(strings.Split(string(data), "\n"))
			if got := bindFailed(line); got != tc.want {
				t.Errorf("bindFailed(%q) = %v, want %v", line, got, tc.want)
			}
			// What the retry's report shows of the line.
			if short := listenError.FindString(line); tc.want && !strings.HasSuffix(short, ": bind: address already in use") {
				t.Errorf("listenError in %q = %q", line, short)
			}
		})
	}
}

// TestCreateRetriesOnATakenPort gives Create, on its first try, a port
// that this test holds: the child that should bind it exits, and Create
// starts again on other ports.
func TestCreateRetriesOnATakenPort(t *testing.T) {
	bin := RequireBinaries(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	held := holdPort(t)
	for i, child := range []string{"etcd (client)", "etcd (peer)", "kube-apiserver"} {
		t.Run(child, func(t *testing.T) {
			picks := 0
			pickPorts = func(n int) ([]int, error) {
				ports, err := freePorts(n)
				if picks++; picks == 1 && err == nil {
					ports[i] = held
				}
				return ports, err
			}
			t.Cleanup(func() { pickPorts = freePorts })
			var retries []string
			ctx := cluster.WithProgress(context.Background(), func(p cluster.Progress) {
				if strings.Contains(p.Detail, "a port was taken") {
					retries = append(retries, p.Detail)
				}
			})
			b := New(WithBinariesDir(bin))
			t.Cleanup(func() {
				if err := b.Destroy(context.Background()); err != nil {
					t.Error(err)
				}
			})
			start := time.Now()
			if err := b.Create(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("created in %s after %d picks: %q", time.Since(start).Round(time.Millisecond), picks, retries)
			if picks != 2 || len(retries) != 1 || !strings.Contains(retries[0], strconv.Itoa(held)) {
				t.Errorf("%d picks, retries %q; want 2 picks and one retry naming port %d", picks, retries, held)
			}
			if got := b.Info().URL; strings.HasSuffix(got, ":"+strconv.Itoa(held)) {
				t.Errorf("kube-apiserver serves at %s, the port the test holds", got)
			}
			if pids := b.Pids(); len(pids) != 2 {
				t.Errorf("%d processes run, want etcd and kube-apiserver", len(pids))
			}
		})
	}
}

// TestCreateGivesUpOnTakenPorts: when every pick has a taken port, Create
// stops after startAttempts and leaves nothing behind.
func TestCreateGivesUpOnTakenPorts(t *testing.T) {
	bin := RequireBinaries(t)
	t.Setenv("ANONLAB_STATE_DIR", t.TempDir())
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the backend makes its directory
	held := holdPort(t)
	picks := 0
	pickPorts = func(n int) ([]int, error) {
		picks++
		ports, err := freePorts(n)
		if err == nil {
			ports[0] = held
		}
		return ports, err
	}
	t.Cleanup(func() { pickPorts = freePorts })
	b := New(WithBinariesDir(bin))
	err := b.Create(context.Background())
	want := fmt.Sprintf("a port was taken on each of %d attempts", startAttempts)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Create = %v; want an error saying %q, with etcd's line", err, want)
	}
	t.Logf("Create: %v", err)
	if picks != startAttempts {
		t.Errorf("%d picks, want %d", picks, startAttempts)
	}
	if pids := b.Pids(); len(pids) != 0 {
		t.Errorf("processes %v run after the failed Create", pids)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("left in the temporary directory after the failed Create: %v, %v", left, err)
	}
	entries, err := ledger.List()
	if err != nil || len(entries) != 0 {
		t.Errorf("ledger after the failed Create: %v, %v", entries, err)
	}
}

// holdPort listens on a free port until the test ends.
func holdPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}
