package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// process is one child (etcd or kube-apiserver) with its output in a log
// file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // set before exited is closed
}

// start runs bin; dieWithLab asks the system to kill it when the lab dies
// (see startChild).
func start(name, bin string, args []string, logPath string, dieWithLab bool) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startChild(cmd, dieWithLab); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, as a kubelet does, and SIGKILL after grace or when
// ctx ends, whichever comes first (at once when grace is 0).
func (p *process) stop(ctx context.Context, grace time.Duration) {
	if p == nil || !p.running() {
		return
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	p.finish(ctx, grace)
}

// finish waits until p, sent SIGTERM, exits, and kills it after grace or
// when ctx ends.
func (p *process) finish(ctx context.Context, grace time.Duration) {
	if grace > 0 {
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
		case <-ctx.Done():
		}
	}
	p.kill()
}

// stopListening sends SIGTERM and returns once addr refuses connections:
// kube-apiserver closes its listener first when it shuts down, and drains
// and stops its controllers after. It also returns when p has exited,
// after within, or when ctx ends; the caller finishes p.
func (p *process) stopListening(ctx context.Context, addr string, within time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		select {
		case <-p.exited:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// kill sends SIGKILL and waits until the process has exited.
func (p *process) kill() {
	if p == nil || !p.running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// lastError is the process's own last error line (cluster.LastErrorLine).
func (p *process) lastError() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return cluster.LastErrorLine(strings.Split(string(data), "\n"))
}
