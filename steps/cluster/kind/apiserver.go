package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// Where kubeadm keeps kube-apiserver's static-Pod manifest in the node,
// and where the lab keeps its own files there.
const (
	manifestPath = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	// nextPath is where the next manifest is written before one rename
	// puts it in place: the kubelet ignores names starting with a dot.
	nextPath = "/etc/kubernetes/manifests/.kube-apiserver.yaml.anonlab"
	// backupPath is outside manifests/: the kubelet would run a copy there
	// as a second Pod.
	backupPath = "/etc/kubernetes/kube-apiserver.yaml.orig"
	// filesDir holds APIServerChange.Files: kubeadm mounts
	// /etc/kubernetes/pki into the kube-apiserver Pod, so a file there is
	// readable by the new apiserver without touching the Pod's volumes.
	filesDir = "/etc/kubernetes/pki/anonlab"
)

// Swap is what was seen while the kubelet replaced kube-apiserver after a
// manifest edit.
type Swap struct {
	// Edited is when the new manifest was in place.
	Edited time.Time
	// Started is when a kube-apiserver container other than the old one
	// was first seen running in the node.
	Started time.Time
	// FirstAnswer is when that container first answered HTTP.
	FirstAnswer time.Time
	// Serving is when its /readyz first answered 200.
	Serving time.Time
	// Container is the new kube-apiserver container's id.
	Container string
}

// LastSwap is what the last manifest edit (or its rollback) saw.
func (b *Backend) LastSwap() Swap { return b.swap }

// ReconfigureAPIServer implements cluster.APIServerReconfigurer: it backs
// the manifest up (once), writes the change's files where the apiserver
// Pod can read them, edits the manifest, and waits until a new
// kube-apiserver (not the old one still answering while the kubelet swaps
// them) serves. A new apiserver that exits, or does not serve within the
// bound, gets the previous manifest back. The edit starts from the
// manifest as it is in the node: in hands-on mode a person may have
// edited it since the lab last did.
func (b *Backend) ReconfigureAPIServer(ctx context.Context, change cluster.APIServerChange) error {
	if b.node == nil {
		return errors.New("reconfigure kube-apiserver: the cluster is not running")
	}
	previous, err := b.readNode(ctx, manifestPath)
	if err != nil {
		return fmt.Errorf("reconfigure kube-apiserver: %w", err)
	}
	next, err := staticpod.Edit(previous, change.SetIn(filesDir), change.Remove)
	if err != nil {
		return fmt.Errorf("edit the kube-apiserver manifest: %w", err)
	}
	if !b.backedUp {
		if _, err := b.nodeOutput(ctx, nil, "sh", "-c", backupScript); err != nil {
			return fmt.Errorf("back up the kube-apiserver manifest: %w", err)
		}
		b.backedUp = true
	}
	for _, name := range slices.Sorted(maps.Keys(change.Files)) {
		if err := b.writeNode(ctx, filesDir+"/"+name, change.Files[name]); err != nil {
			return err
		}
	}
	if bytes.Equal(next, previous) {
		return nil // the kubelet would not replace the Pod: nothing to wait for
	}
	err = b.replaceManifest(ctx, next)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err // interrupted: cleanup puts the original back
	}
	lastErr := b.lastAPIServerError(ctx, b.swap.Container)
	if rerr := b.replaceManifest(ctx, previous); rerr != nil {
		return fmt.Errorf("roll back the kube-apiserver manifest after %v: %w", err, rerr)
	}
	return &cluster.RollbackError{Change: change, LastError: lastErr, Err: err}
}

// backupScript keeps the manifest as kubeadm wrote it: a backup left by a
// run that kept its cluster is not overwritten.
const backupScript = "[ -e " + backupPath + " ] || cp -p " + manifestPath + " " + backupPath

// RestoreAPIServer implements cluster.APIServerReconfigurer: the manifest
// comes back from the backup, whether the lab made it or a person did
// with the commands DescribeChange shows, and the lab's files go.
func (b *Backend) RestoreAPIServer(ctx context.Context) error {
	if b.node == nil {
		return nil
	}
	original, err := b.nodeOutput(ctx, nil, "sh", "-c", `[ ! -e "$1" ] || cat "$1"`, "sh", backupPath)
	switch {
	case err != nil:
		return fmt.Errorf("restore the kube-apiserver manifest: %w", err)
	case len(original) == 0 && b.backedUp:
		return fmt.Errorf("restore the kube-apiserver manifest: the backup %s is gone from the node", backupPath)
	case len(original) == 0:
		return nil // never changed
	}
	current, err := b.readNode(ctx, manifestPath)
	if err != nil {
		return fmt.Errorf("restore the kube-apiserver manifest: %w", err)
	}
	if !bytes.Equal(original, current) {
		if err := b.replaceManifest(ctx, original); err != nil {
			return fmt.Errorf("restore the kube-apiserver manifest: %w", err)
		}
	}
	if _, err := b.nodeOutput(ctx, nil, "rm", "-rf", backupPath, filesDir); err != nil {
		return fmt.Errorf("remove the lab's files from the node: %w", err)
	}
	b.backedUp = false
	return nil
}

// APIServerArgs implements cluster.APIServerReconfigurer: the flags of the
// command in the manifest, as the kubelet reads it.
func (b *Backend) APIServerArgs(ctx context.Context) ([]string, error) {
	if b.node == nil {
		return nil, errors.New("read kube-apiserver's flags: the cluster is not running")
	}
	m, err := b.readNode(ctx, manifestPath)
	if err != nil {
		return nil, err
	}
	return staticpod.Flags(m)
}

// DescribeChange implements cluster.ChangeDescriber: the commands a person
// types on the host for the same edit, in terms of the variables `anonlab
// env` exports: NODE (the control-plane container), KUBE_APISERVER_MANIFEST
// (the manifest's path in the node: it expands on the host, and the node
// gets the path) and MANIFESTS (the scenario's manifests). The backup keeps
// the manifest as kubeadm wrote it, however many changes are made by hand.
func (b *Backend) DescribeChange(change cluster.APIServerChange) string {
	exec := b.rt.Name + ` exec "$NODE" `
	var lines []string
	if !b.backedUp {
		lines = append(lines, exec+"sh -c "+cluster.ShellQuote(backupScript))
	}
	for _, name := range slices.Sorted(maps.Keys(change.Files)) {
		source, ok := change.Sources[name]
		if !ok {
			lines = append(lines, fmt.Sprintf("# %s: the change names no manifest it comes from", name))
			continue
		}
		write := "mkdir -p " + filesDir + " && cat > " + filesDir + "/" + cluster.ShellQuote(name)
		lines = append(lines, b.rt.Name+` exec -i "$NODE" sh -c `+cluster.ShellQuote(write)+" < "+inManifests(source))
	}
	sed, err := staticpod.Sed(change.SetIn(filesDir), change.Remove, `"$KUBE_APISERVER_MANIFEST"`)
	if err != nil {
		return strings.Join(append(lines, "# "+err.Error()), "\n")
	}
	return strings.Join(append(lines, exec+sed), "\n")
}

// inManifests is the shell word for a file of $MANIFESTS.
func inManifests(name string) string {
	if q := cluster.ShellQuote(name); q != name {
		return `"$MANIFESTS"/` + q
	}
	return `"$MANIFESTS/` + name + `"`
}

// DescribeFlagsRead implements cluster.FlagsDescriber.
func (b *Backend) DescribeFlagsRead() string {
	return b.rt.Name + ` exec "$NODE" cat "$KUBE_APISERVER_MANIFEST"`
}

// ReadAPIServerFile implements cluster.APIServerFileReader: kubeadm mounts
// the node's directories into the kube-apiserver Pod at the same paths.
func (b *Backend) ReadAPIServerFile(ctx context.Context, path string) ([]byte, error) {
	if b.node == nil {
		return nil, errors.New("read a kube-apiserver file: the cluster is not running")
	}
	return b.readNode(ctx, path)
}

// replaceManifest puts manifest in place with one rename, so that the
// kubelet never reads half a file, and waits for the new kube-apiserver.
func (b *Backend) replaceManifest(ctx context.Context, manifest []byte) error {
	before, err := b.apiserverContainers(ctx)
	if err != nil {
		return err
	}
	if err := b.writeNode(ctx, nextPath, manifest); err != nil {
		return err
	}
	if _, err := b.nodeOutput(ctx, nil, "mv", nextPath, manifestPath); err != nil {
		return fmt.Errorf("move the new kube-apiserver manifest into place: %w", err)
	}
	b.swap, err = b.waitSwap(ctx, before, time.Now())
	return err
}

// container is a kube-apiserver container as the node's container runtime
// knows it (crictl): the kubelet makes one in a new Pod sandbox for the new
// static Pod, and a new one in the same sandbox for each restart.
type container struct {
	ID      string
	Sandbox string
	State   string // CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED
	Attempt uint32
	Created time.Time
}

func (b *Backend) apiserverContainers(ctx context.Context) ([]container, error) {
	out, err := b.nodeOutput(ctx, nil, "crictl", "ps", "--all", "--name", "^kube-apiserver$", "--output", "json")
	if err != nil {
		return nil, fmt.Errorf("list the kube-apiserver containers in the node: %w", err)
	}
	return parseContainers(out)
}

// parseContainers reads `crictl ps --output json`.
func parseContainers(out []byte) ([]container, error) {
	var list struct {
		Containers []struct {
			ID       string `json:"id"`
			Sandbox  string `json:"podSandboxId"`
			State    string `json:"state"`
			Metadata struct {
				Attempt uint32 `json:"attempt"`
			} `json:"metadata"`
			CreatedAt string `json:"createdAt"` // nanoseconds since the epoch
		} `json:"containers"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("read crictl's container list: %w", err)
	}
	var cs []container
	for _, c := range list.Containers {
		ns, err := strconv.ParseInt(c.CreatedAt, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read crictl's container list: createdAt %q", c.CreatedAt)
		}
		cs = append(cs, container{ID: c.ID, Sandbox: c.Sandbox, State: c.State, Attempt: c.Metadata.Attempt, Created: time.Unix(0, ns)})
	}
	return cs, nil
}

// Container states, as crictl names them.
const (
	runningState = "CONTAINER_RUNNING"
	exitedState  = "CONTAINER_EXITED"
)

// waitSwap waits until a kube-apiserver container of a Pod other than those
// in before runs, then polls /readyz, as the admin, on a fresh connection
// every 50 ms, until it answers 200. Until the new container is seen, an
// answer would come from the old apiserver and proves nothing. A new
// container that exits before it serves ends the wait. The containers are
// listed on a goroutine of their own, so that a slow `docker exec` never
// delays a poll.
func (b *Backend) waitSwap(ctx context.Context, before []container, edited time.Time) (Swap, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.readyWithin)
	listed := make(chan listing, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.watchContainers(ctx, listed)
	}()
	defer func() { cancel(); <-done }()

	// A restart of an old Pod, say one crash-looping on a refused flag,
	// is not the new apiserver.
	old := map[string]bool{}
	for _, c := range before {
		old[c.Sandbox] = true
	}
	s := Swap{Edited: edited}
	state := "waiting for the kubelet to see the new manifest"
	var lastReport time.Time
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("no new kube-apiserver served within %s of the manifest edit (last: %s): %w", b.opts.readyWithin, state, ctx.Err())
		case l := <-listed:
			if l.err != nil {
				state = l.err.Error()
				break
			}
			oldRunning := ""
			for _, c := range l.containers {
				switch {
				case old[c.Sandbox]:
					if c.State == runningState {
						oldRunning = c.ID
					}
				case c.State == exitedState:
					s.Container = c.ID
					return s, fmt.Errorf("the new kube-apiserver container %s exited before it served, %s after the edit", short(c.ID), time.Since(edited).Round(time.Millisecond))
				case c.State == runningState && s.Container == "":
					s.Container, s.Started = c.ID, l.at
					state = fmt.Sprintf("new kube-apiserver container %s (restarts %d) runs; polling /readyz", short(c.ID), c.Attempt)
				}
			}
			switch {
			case s.Container != "":
			case oldRunning != "":
				state = "the kubelet has not replaced kube-apiserver yet (container " + short(oldRunning) + " still runs)"
			default:
				state = "the old kube-apiserver stopped; waiting for the kubelet to start the new one"
			}
		case <-tick.C:
			if s.Container == "" {
				break
			}
			code, err := b.get(ctx, "/readyz")
			switch {
			case err != nil:
				state = "GET /readyz: " + err.Error()
			case code == http.StatusOK:
				s.Serving = time.Now()
				if s.FirstAnswer.IsZero() {
					s.FirstAnswer = s.Serving
				}
				cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: fmt.Sprintf("new kube-apiserver (container %s) serves, %s after the manifest edit", short(s.Container), s.Serving.Sub(edited).Round(time.Millisecond)), Elapsed: time.Since(edited), Done: true})
				return s, nil
			default:
				if s.FirstAnswer.IsZero() {
					s.FirstAnswer = time.Now()
				}
				state = "GET /readyz " + strconv.Itoa(code)
			}
		}
		if time.Since(lastReport) >= 500*time.Millisecond {
			lastReport = time.Now()
			cluster.ReportProgress(ctx, cluster.Progress{Phase: "wait", Detail: state, Elapsed: time.Since(edited)})
		}
	}
}

// listing is one look at the kube-apiserver containers.
type listing struct {
	containers []container
	at         time.Time
	err        error
}

// watchContainers lists the kube-apiserver containers until ctx ends,
// keeping only the latest listing in out. A new apiserver needs seconds
// between its container starting and its first answer, so a listing every
// quarter of a second (each a `docker exec`) is soon enough and spares a
// small machine's CPU.
func (b *Backend) watchContainers(ctx context.Context, out chan listing) {
	for ctx.Err() == nil {
		cs, err := b.apiserverContainers(ctx)
		l := listing{containers: cs, at: time.Now(), err: err}
		select {
		case <-out: // replaced by the newer one
		default:
		}
		out <- l
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func short(id string) string { return id[:min(len(id), 13)] }

func (b *Backend) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.Host+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.poll.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// lastAPIServerError is the last error line of a kube-apiserver container
// (the newest one when id is empty), from its log.
func (b *Backend) lastAPIServerError(ctx context.Context, id string) string {
	ctx = context.WithoutCancel(ctx)
	if id == "" {
		cs, err := b.apiserverContainers(ctx)
		if err != nil || len(cs) == 0 {
			return ""
		}
		id = slices.MaxFunc(cs, func(a, b container) int { return a.Created.Compare(b.Created) }).ID
	}
	var logs bytes.Buffer
	// crictl copies the container's stderr, where klog writes, to its own.
	_ = b.node.CommandContext(ctx, "crictl", "logs", "--tail", "300", id).SetStdout(&logs).SetStderr(&logs).Run()
	return cluster.LastErrorLine(strings.Split(logs.String(), "\n"))
}

// APIServerServingSince is when the kube-apiserver container that serves
// now logged "Serving securely on", by the container runtime's clock: with
// LastSwap, it measures how soon the new apiserver was seen.
func (b *Backend) APIServerServingSince(ctx context.Context) (time.Time, error) {
	if b.swap.Container == "" {
		return time.Time{}, errors.New("no kube-apiserver swap seen yet")
	}
	var out bytes.Buffer
	cmd := b.node.CommandContext(ctx, "crictl", "logs", "--timestamps", b.swap.Container).SetStdout(&out).SetStderr(&out)
	if err := cmd.Run(); err != nil {
		return time.Time{}, fmt.Errorf("read the kube-apiserver log: %w", err)
	}
	t, ok := servingSince(out.Bytes())
	if !ok {
		return time.Time{}, errors.New("the kube-apiserver log has no \"Serving securely\" line")
	}
	return t, nil
}

// servingSince is the time of the first "Serving securely on" line of a
// log printed by crictl logs --timestamps ("<RFC 3339 time> <message>").
func servingSince(log []byte) (time.Time, bool) {
	for _, line := range strings.Split(string(log), "\n") {
		stamp, msg, _ := strings.Cut(line, " ")
		if strings.Contains(msg, "Serving securely on") {
			t, err := time.Parse(time.RFC3339Nano, stamp)
			return t, err == nil
		}
	}
	return time.Time{}, false
}

// refusesCgroupV1 tells whether a kubelet of this version refuses cgroup v1
// unless its configuration says failCgroupV1: false (1.35 and later).
func refusesCgroupV1(version string) bool {
	return semver.Compare(semver.MajorMinor(version), "v1.35") >= 0
}

// readNode returns a file of the control-plane node.
func (b *Backend) readNode(ctx context.Context, path string) ([]byte, error) {
	out, err := b.nodeOutput(ctx, nil, "cat", path)
	if err != nil {
		return nil, fmt.Errorf("read %s in the node: %w", path, err)
	}
	return out, nil
}

// writeNode writes a file of the control-plane node, readable by root
// only, as kubeadm's manifests are.
func (b *Backend) writeNode(ctx context.Context, path string, data []byte) error {
	dir := path[:strings.LastIndexByte(path, '/')]
	if _, err := b.nodeOutput(ctx, data, "sh", "-c", `umask 077 && mkdir -p "$1" && cat > "$2"`, "sh", dir, path); err != nil {
		return fmt.Errorf("write %s in the node: %w", path, err)
	}
	return nil
}

// nodeOutput runs a command in the control-plane node (`docker exec`) and
// returns its output; the error keeps the command's last line.
func (b *Backend) nodeOutput(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := b.node.CommandContext(ctx, name, args...).SetStdout(&stdout).SetStderr(&stderr)
	if stdin != nil {
		cmd.SetStdin(bytes.NewReader(stdin))
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}
