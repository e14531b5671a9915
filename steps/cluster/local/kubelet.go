package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// The backend behaves as a kubelet does on a kubeadm node: kube-apiserver
// runs with the command line of its static-Pod manifest, and an edit of
// that file, by the lab or by a person, restarts it with the new flags.
// etcd keeps running, so everything stored (the RBAC objects) survives.

const (
	// settleDelay coalesces a burst of events on the manifest (an editor
	// that writes in place, sed's temporary file and rename) into one read.
	settleDelay = 100 * time.Millisecond
	// stopGrace bounds a serving kube-apiserver's graceful shutdown, as a
	// Pod's termination grace period does.
	stopGrace = 30 * time.Second
	// progressEvery is how often a wait for the kubelet reports progress.
	progressEvery = 250 * time.Millisecond
)

type podState int

const (
	starting podState = iota // started, has not served yet
	serving                  // answered /readyz 200
	failed                   // exited, could not start, or did not serve within the bound
	stopping                 // replaced by a newer manifest
)

// pod is one kube-apiserver process and the flags it was started with, as
// a kubelet runs a static Pod. args and proc do not change; the other
// fields are guarded by Backend.mu.
type pod struct {
	args   []string
	proc   *process // nil when it could not start
	state  podState
	err    error              // why it failed
	status string             // what its readiness wait saw last
	cancel context.CancelFunc // ends its readiness wait; nil when none runs
}

// startKubelet watches the manifests directory on a goroutine of its own
// until stopKubelet, having read the manifest once, as a kubelet does when
// it starts: the kube-apiserver that runs is the manifest's already, unless
// it was edited since Create wrote it.
func (b *Backend) startKubelet() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch the static-Pod manifests: %w", err)
	}
	dir := filepath.Join(b.dir, manifestsDir)
	if err := w.Add(dir); err != nil {
		return errors.Join(fmt.Errorf("watch %s: %w", dir, err), w.Close())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.runKubelet(ctx, w)
	}()
	b.kubeletDone = done
	b.stopKubelet = func() {
		cancel()
		<-done
	}
	return nil
}

// runKubelet syncs kube-apiserver with its manifest after each change,
// until ctx ends; it returns once every goroutine it started has.
func (b *Backend) runKubelet(ctx context.Context, w *fsnotify.Watcher) {
	var readiness sync.WaitGroup
	defer func() {
		_ = w.Close()
		readiness.Wait()
	}()
	settle := time.NewTimer(0)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// sed -i renames its temporary file onto the manifest (a
			// create), an editor may write it in place.
			if filepath.Base(ev.Name) == manifestFile {
				settle.Reset(settleDelay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				settle.Reset(settleDelay) // events were lost: read the manifest again
				continue
			}
			b.mu.Lock()
			b.startErr = "watch the static-Pod manifests: " + err.Error()
			b.notifyLocked()
			b.mu.Unlock()
		case <-settle.C:
			b.sync(ctx, &readiness)
		}
	}
}

// sync reads the manifest and, when its flags are not those of the
// kube-apiserver that runs (or that one failed), stops that one and starts
// kube-apiserver with the manifest's. A manifest that cannot be read is
// recorded as the start error and the kube-apiserver that runs is kept.
func (b *Backend) sync(ctx context.Context, readiness *sync.WaitGroup) {
	data, err := os.ReadFile(b.manifestPath())
	var args []string
	if err != nil {
		err = fmt.Errorf("read the kube-apiserver manifest: %w", err)
	} else {
		args, err = staticpod.Flags(data)
	}
	b.mu.Lock()
	b.synced = data
	old := b.pod
	switch {
	case err != nil:
		b.startErr = err.Error()
		b.notifyLocked()
		b.mu.Unlock()
		return
	case old != nil && old.state != failed && slices.Equal(old.args, args):
		// The same Pod. One that serves is what the manifest says again.
		if old.state == serving {
			b.startErr = ""
		}
		b.notifyLocked()
		b.mu.Unlock()
		return
	}
	// One that never served serves no one: it is killed, not drained.
	var grace time.Duration
	if old != nil {
		if old.state == serving {
			grace = stopGrace
		}
		old.state = stopping
		if old.cancel != nil {
			old.cancel()
		}
	}
	b.notifyLocked()
	b.mu.Unlock()
	switch {
	case old != nil && grace > 0 && old.proc != nil && old.proc.running():
		b.replace(ctx, old.proc, grace, readiness)
	case old != nil:
		old.proc.stop(ctx, grace)
	}
	if ctx.Err() != nil {
		return
	}
	p, err := b.startAPIServer(args)
	if err != nil {
		p.proc.kill() // not in the ledger: it must not outlive the lab
		b.settle(p, fmt.Errorf("start kube-apiserver: %w", err))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, b.opts.readyWithin)
	b.mu.Lock()
	p.cancel = cancel
	b.mu.Unlock()
	readiness.Add(1)
	go func() {
		defer readiness.Done()
		defer cancel()
		err := b.waitReady(rctx, p.proc, func(detail string, _ time.Duration) {
			b.mu.Lock()
			p.status = detail
			b.mu.Unlock()
		})
		b.settle(p, err)
	}()
}

// replace stops old, a serving kube-apiserver, as a kubelet stops a
// Pod's container (SIGTERM, SIGKILL after grace) but waits only until its
// port refuses connections: from then on it answers no one, and the new
// kube-apiserver can bind the port and start while the old one drains and
// stops its controllers (~1-3 s), its log moved to
// kube-apiserver.previous.log. The ledger names it until it has exited;
// Destroy, through ctx, ends that wait.
func (b *Backend) replace(ctx context.Context, old *process, grace time.Duration, finishing *sync.WaitGroup) {
	began := time.Now()
	old.stopListening(ctx, "127.0.0.1:"+strconv.Itoa(b.port), grace)
	b.mu.Lock()
	b.draining = append(b.draining, old)
	b.mu.Unlock()
	finishing.Add(1)
	go func() {
		defer finishing.Done()
		old.finish(ctx, grace-time.Since(began))
		b.mu.Lock()
		b.draining = slices.DeleteFunc(b.draining, func(p *process) bool { return p == old })
		b.mu.Unlock()
		_ = b.record() // a failed save leaves a pid cleanup finds gone
	}()
}

// settle records how p's start ended: it served (err nil) or failed, with
// kube-apiserver's own last error line as the start error. A pod replaced
// meanwhile, or a wait ended by Destroy, records nothing.
func (b *Backend) settle(p *pod, err error) {
	line := ""
	if err != nil && p.proc != nil {
		line = p.proc.lastError()
	}
	if line == "" && err != nil {
		line = err.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pod != p || p.state != starting || errors.Is(err, context.Canceled) {
		return
	}
	if err == nil {
		p.state = serving
		b.startErr = ""
	} else {
		p.state, p.err = failed, err
		b.startErr = line
	}
	b.notifyLocked()
}

// notifyLocked wakes the waits for the kubelet; b.mu is held.
func (b *Backend) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// waitPod waits until the kubelet has read the manifest data, just
// written, and kube-apiserver with its flags, want, serves or has failed.
// The bound is the kubelet's own: the old kube-apiserver's graceful stop,
// then the new one's readiness bound.
func (b *Backend) waitPod(ctx context.Context, data []byte, want []string) error {
	began := time.Now()
	bound := settleDelay + stopGrace + b.opts.readyWithin
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		detail := "waiting for the kubelet to read the manifest"
		b.mu.Lock()
		p, changed := b.pod, b.changed
		if bytes.Equal(b.synced, data) && p != nil && slices.Equal(p.args, want) {
			switch p.state {
			case serving:
				b.mu.Unlock()
				cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: "kube-apiserver serves with the manifest's flags", Elapsed: time.Since(began), Done: true})
				return nil
			case failed:
				err := p.err
				b.mu.Unlock()
				return err
			}
			detail = "kube-apiserver restarts"
			if p.status != "" {
				detail = p.status
			}
		}
		b.mu.Unlock()
		cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: detail, Elapsed: time.Since(began)})
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver did not serve with the manifest's flags within %s (last: %s): %w", time.Since(began).Round(time.Millisecond), detail, ctx.Err())
		case <-changed:
		case <-tick.C:
		}
	}
}

// ServingAPIServer implements cluster.ServingAPIServerReader: the flags of
// the kube-apiserver the kubelet runs when it answers /readyz 200 as the
// admin, and the start error recorded since one last served.
func (b *Backend) ServingAPIServer(ctx context.Context) ([]string, string, error) {
	b.mu.Lock()
	p, startErr := b.pod, b.startErr
	live := p != nil && p.proc != nil && (p.state == starting || p.state == serving)
	b.mu.Unlock()
	if !live || !p.proc.running() {
		return nil, startErr, nil
	}
	code, err := b.get(ctx, "/readyz")
	if ctx.Err() != nil {
		return nil, "", fmt.Errorf("read the serving kube-apiserver: %w", ctx.Err())
	}
	if err != nil || code != http.StatusOK {
		return nil, startErr, nil
	}
	b.settle(p, nil) // seen serving before its readiness wait saw it
	b.mu.Lock()
	startErr = b.startErr
	b.mu.Unlock()
	return slices.Clone(p.args), startErr, nil
}
