package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/anonlab/anonlab/steps/cluster/backends"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// labEnv turns the test binary into a lab for the tests below to kill:
// "die" for a run's cluster, "keep" for --keep.
const labEnv = "ANONLAB_TEST_LAB"

func TestMain(m *testing.M) {
	if mode := os.Getenv(labEnv); mode != "" {
		os.Exit(runLab(mode))
	}
	os.Exit(m.Run())
}

// lab is what the lab process started, as it reports it.
type lab struct {
	Pids       []int
	Dir        string
	Kubeconfig string
	bin        string
	cmd        *exec.Cmd
	stderr     *bytes.Buffer
}

// runLab creates a local cluster through backends (as the CLI does),
// prints what it started as one JSON line, then waits for its stdin to
// close, which only happens if the test ended without killing it.
func runLab(mode string) int {
	b, err := backends.New(local.Name, backends.Options{Keep: mode == "keep"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := b.Create(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lb := b.(*local.Backend)
	if err := json.NewEncoder(os.Stdout).Encode(lab{Pids: lb.Pids(), Dir: lb.Dir(), Kubeconfig: lb.Info().Kubeconfig}); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := b.Destroy(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startLab runs the test binary as a lab that creates a local cluster, and
// waits for the processes it started.
func startLab(t *testing.T, mode string) *lab {
	t.Helper()
	bin := local.RequireBinaries(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), labEnv+"="+mode, "ANONLAB_BINARIES_DIR="+bin, "ANONLAB_STATE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if _, err := cmd.StdinPipe(); err != nil { // held open: the lab waits on it
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the lab process: %v", err)
	}
	l := &lab{bin: bin, cmd: cmd, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		l.killLeft(t)
		if l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				t.Error(err)
			}
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("the lab process reported nothing (%v): %s", err, stderr.String())
	}
	if err := json.Unmarshal(line, l); err != nil {
		t.Fatalf("the lab process reported %q: %v", line, err)
	}
	if len(l.Pids) != 2 {
		t.Fatalf("the lab started %v, want etcd and kube-apiserver", l.Pids)
	}
	return l
}

// kill SIGKILLs the lab process: nothing of its own cleanup runs.
func (l *lab) kill(t *testing.T) {
	t.Helper()
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the lab process: %v", err)
	}
	if err := l.cmd.Wait(); err == nil || l.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the lab process ended with %v, not killed: %s", err, l.stderr.String())
	}
}

// killLeft kills those of the lab's children that still run.
func (l *lab) killLeft(t *testing.T) {
	for _, pid := range l.Pids {
		if l.runs(pid) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("kill %d: %v", pid, err)
			}
		}
	}
}

// runs reports whether pid is one of the lab's children and has not ended
// (a zombie has ended; nobody may reap orphans in a container).
func (l *lab) runs(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.HasPrefix(cmdline, []byte(l.bin)) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// TestChildrenDieWithTheLab kills the lab outright: the system kills etcd
// and kube-apiserver with it.
func TestChildrenDieWithTheLab(t *testing.T) {
	l := startLab(t, "die")
	for _, pid := range l.Pids {
		if !l.runs(pid) {
			t.Fatalf("process %d does not run before the lab is killed", pid)
		}
	}
	killed := time.Now()
	l.kill(t)
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return !l.runs(l.Pids[0]) && !l.runs(l.Pids[1]), nil
	})
	if err != nil {
		t.Fatalf("etcd and kube-apiserver (%v) still run 10s after the lab was killed", l.Pids)
	}
	t.Logf("etcd and kube-apiserver gone %s after the lab was killed", time.Since(killed).Round(time.Millisecond))
}

// TestKeptChildrenOutliveTheLab kills a lab whose cluster is kept: etcd and
// kube-apiserver run on and serve; the test kills them itself.
func TestKeptChildrenOutliveTheLab(t *testing.T) {
	l := startLab(t, "keep")
	l.kill(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// /readyz checks etcd too.
	resp, err := client.Get(cfg.Host + "/readyz")
	if err != nil {
		t.Fatalf("the kept cluster does not answer after the lab was killed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz on the kept cluster = %d, want 200", resp.StatusCode)
	}
	for _, pid := range l.Pids {
		if !l.runs(pid) {
			t.Errorf("process %d of the kept cluster ended with the lab", pid)
		}
	}
}
