package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/staticpod"
)

// The backend's directory holds kube-apiserver's static-Pod manifest as a
// kubeadm node holds /etc/kubernetes/manifests/kube-apiserver.yaml.
const (
	manifestsDir = "manifests"
	manifestFile = "kube-apiserver.yaml"
	// backupFile is the manifest as Create wrote it, outside manifests/
	// as on a node, where a kubelet would run a copy as a second Pod.
	backupFile = "kube-apiserver.yaml.orig"
	// filesDir holds APIServerChange.Files.
	filesSubdir = "files"
)

func (b *Backend) manifestPath() string { return filepath.Join(b.dir, manifestsDir, manifestFile) }
func (b *Backend) backupPath() string   { return filepath.Join(b.dir, backupFile) }
func (b *Backend) filesDir() string     { return filepath.Join(b.dir, filesSubdir) }

// renderManifest is a kubeadm-like static Pod whose container runs
// kube-apiserver with args; the command's items are indented as kubeadm
// indents them, so that staticpod.Edit and the sed command work on it.
func renderManifest(bin string, args []string) ([]byte, error) {
	pod := corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kube-apiserver",
			Namespace: "kube-system",
			Labels:    map[string]string{"component": "kube-apiserver", "tier": "control-plane"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:    "kube-apiserver",
				Command: append([]string{"kube-apiserver"}, args...),
			}},
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
		},
	}
	data, err := sigsyaml.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("render the kube-apiserver manifest: %w", err)
	}
	header := "# anonlab's local backend runs " + filepath.Join(bin, binaries.KubeAPIServer) + " with this\n" +
		"# command's flags, and again whenever this file changes, as a kubelet does.\n"
	data = append([]byte(header), data...)
	if got, err := staticpod.Flags(data); err != nil || !slices.Equal(got, args) {
		return nil, fmt.Errorf("the rendered kube-apiserver manifest reads as %q (%v), want %q", got, err, args)
	}
	if !bytes.Contains(data, []byte("\n"+staticpod.Indent+"- kube-apiserver\n")) {
		return nil, errors.New("the rendered kube-apiserver manifest is not indented as kubeadm's")
	}
	return data, nil
}

// writeManifests writes the manifest of the kube-apiserver that runs, and
// its backup.
func (b *Backend) writeManifests() error {
	data, err := renderManifest(b.bin, b.pod.args)
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.backupPath(), data, 0o600); err != nil {
		return fmt.Errorf("back up the kube-apiserver manifest: %w", err)
	}
	if err := os.Mkdir(filepath.Join(b.dir, manifestsDir), 0o700); err != nil {
		return fmt.Errorf("create the manifests directory: %w", err)
	}
	return b.writeManifest(data)
}

// writeManifest puts data in place with one rename, so that the kubelet
// never reads half a file. The temporary file is outside manifests/.
func (b *Backend) writeManifest(data []byte) error {
	f, err := os.CreateTemp(b.dir, "."+manifestFile+".*")
	if err != nil {
		return fmt.Errorf("write the kube-apiserver manifest: %w", err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		return errors.Join(fmt.Errorf("write the kube-apiserver manifest: %w", err), os.Remove(f.Name()))
	}
	if err := os.Rename(f.Name(), b.manifestPath()); err != nil {
		return errors.Join(fmt.Errorf("move the kube-apiserver manifest into place: %w", err), os.Remove(f.Name()))
	}
	return nil
}

// applyManifest writes data as the manifest and waits for the kubelet's
// outcome.
func (b *Backend) applyManifest(ctx context.Context, data []byte) error {
	want, err := staticpod.Flags(data)
	if err != nil {
		return err
	}
	if err := b.writeManifest(data); err != nil {
		return err
	}
	return b.waitPod(ctx, data, want)
}

// ReconfigureAPIServer implements cluster.APIServerReconfigurer: it writes
// the change's files and the edited manifest, and the kubelet restarts
// kube-apiserver. When the new one does not serve, the previous manifest
// goes back.
func (b *Backend) ReconfigureAPIServer(ctx context.Context, change cluster.APIServerChange) error {
	if b.apiserver() == nil {
		return errors.New("reconfigure kube-apiserver: the cluster is not running")
	}
	if len(change.Files) > 0 {
		if err := os.MkdirAll(b.filesDir(), 0o700); err != nil {
			return fmt.Errorf("create the directory of kube-apiserver's files: %w", err)
		}
		for name, data := range change.Files {
			if err := os.WriteFile(filepath.Join(b.filesDir(), filepath.Base(name)), data, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	previous, err := os.ReadFile(b.manifestPath())
	if err != nil {
		return fmt.Errorf("read the kube-apiserver manifest: %w", err)
	}
	next, err := staticpod.Edit(previous, change.SetIn(b.filesDir()), change.Remove)
	if err != nil {
		return fmt.Errorf("edit the kube-apiserver manifest: %w", err)
	}
	if bytes.Equal(next, previous) {
		return nil // the kubelet would not restart it: nothing to wait for
	}
	err = b.applyManifest(ctx, next)
	if err == nil {
		return nil
	}
	lastErr := ""
	if p := b.apiserver(); p != nil {
		lastErr = p.lastError()
	}
	if ctx.Err() != nil && !cluster.RollbackOnCancel(ctx) {
		return fmt.Errorf("interrupted while kube-apiserver restarted (not rolled back: the cluster is deleted next): %w", err)
	}
	// Roll back even when interrupted (Ctrl-C): cleanup needs a serving
	// apiserver to revoke what the run granted. The kubelet kills the
	// refused kube-apiserver rather than draining it: it never served.
	if rerr := b.applyManifest(context.WithoutCancel(ctx), previous); rerr != nil {
		return fmt.Errorf("roll back the kube-apiserver manifest after %v: %w", err, rerr)
	}
	return &cluster.RollbackError{Change: change, LastError: lastErr, Err: err}
}

// RestoreAPIServer implements cluster.APIServerReconfigurer: the manifest
// comes back from the backup, and the kubelet restarts kube-apiserver if
// its flags differ.
func (b *Backend) RestoreAPIServer(ctx context.Context) error {
	if b.apiserver() == nil {
		return nil
	}
	original, err := os.ReadFile(b.backupPath())
	if err != nil {
		return fmt.Errorf("restore the kube-apiserver manifest: %w", err)
	}
	if current, err := os.ReadFile(b.manifestPath()); err == nil && bytes.Equal(current, original) {
		return nil
	}
	if err := b.applyManifest(ctx, original); err != nil {
		return fmt.Errorf("restore the kube-apiserver manifest: %w", err)
	}
	return nil
}

// APIServerArgs implements cluster.APIServerReconfigurer: the flags the
// kubelet started kube-apiserver with last.
func (b *Backend) APIServerArgs(context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pod == nil {
		return nil, errors.New("read kube-apiserver's flags: the cluster is not running")
	}
	return slices.Clone(b.pod.args), nil
}

// DescribeChange implements cluster.ChangeDescriber: the commands a person
// types, in a shell that evaluated `anonlab env`, to make the change; the
// kubelet does the rest.
func (b *Backend) DescribeChange(change cluster.APIServerChange) string {
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(change.Files)) {
		source := change.Sources[name]
		if source == "" {
			source = name // the scenario's manifest of the same name
		}
		lines = append(lines, fmt.Sprintf(`mkdir -p %s && cp "$MANIFESTS"/%s %s`,
			cluster.ShellQuote(b.filesDir()), cluster.ShellQuote(source), cluster.ShellQuote(filepath.Join(b.filesDir(), filepath.Base(name)))))
	}
	sed, err := hostSed(change.SetIn(b.filesDir()), change.Remove, `"$KUBE_APISERVER_MANIFEST"`)
	if err != nil {
		return strings.Join(append(lines, "# "+err.Error()), "\n")
	}
	return strings.Join(append(lines, sed), "\n")
}

// hostSed is the edit as a command for the sed of this machine, where the
// person types it: GNU sed on Linux, BSD sed on macOS.
func hostSed(set, remove []string, file string) (string, error) {
	if runtime.GOOS == "linux" {
		return staticpod.Sed(set, remove, file)
	}
	return staticpod.SedBSD(set, remove, file)
}

// DescribeFlagsRead implements cluster.FlagsDescriber.
func (b *Backend) DescribeFlagsRead() string {
	return `cat "$KUBE_APISERVER_MANIFEST"`
}

// ReadAPIServerFile implements cluster.APIServerFileReader: the process
// runs on this machine.
func (b *Backend) ReadAPIServerFile(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(path)
}
