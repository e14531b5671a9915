// Command image builds, from Go module sources and with no registry, the
// binaries of a kind node image: the node's own commands (kubelet, kubeadm,
// kubectl, crictl) and one binary for each image kubeadm expects (the
// control plane, kube-proxy, etcd, CoreDNS with the plugins of kubeadm's
// Corefile, pause). build.sh runs it and
// reads one line per file from its output:
//
//	node PATH               a command the node runs, installed in /usr/bin
//	image REF PATH DEST     an image kubeadm expects: PATH becomes DEST in it
//
// Everything is kept in the anonlab cache and built only once; Kubernetes,
// etcd, CoreDNS and crictl builds take the same build lock as the local
// backend's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// nodeCommands run on the node itself; controlPlane become images.
var (
	nodeCommands = []string{"kubelet", "kubeadm", "kubectl"}
	controlPlane = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
)

func main() {
	version := flag.String("kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = cluster.WithProgress(ctx, progress)
	if err := run(ctx, *version); err != nil {
		fmt.Fprintln(os.Stderr, "kind-node-image: "+err.Error())
		os.Exit(1)
	}
}

// progress shows a build's progress on stderr, at most every 10 seconds
// but always at the end of a phase, so that make's output stays readable.
var lastShown time.Time

func progress(p cluster.Progress) {
	if !p.Done && time.Since(lastShown) < 10*time.Second {
		return
	}
	lastShown = time.Now()
	fmt.Fprintf(os.Stderr, "kind-node-image: [%s] %s\n", p.Elapsed.Round(time.Second), p.Detail)
}

func run(ctx context.Context, version string) error {
	root, err := binaries.CacheRoot()
	if err != nil {
		return err
	}
	kdir := filepath.Join(root, version)
	if err := binaries.BuildKubernetes(ctx, version, kdir, append(append([]string(nil), nodeCommands...), controlPlane...)...); err != nil {
		return err
	}
	refs, err := output(ctx, os.TempDir(), filepath.Join(kdir, "kubeadm"), "config", "images", "list", "--kubernetes-version", version)
	if err != nil {
		return fmt.Errorf("ask kubeadm which images it expects: %w", err)
	}
	var lines []string
	for _, name := range nodeCommands {
		lines = append(lines, "node "+filepath.Join(kdir, name))
	}
	crictl, err := buildCrictl(ctx, root)
	if err != nil {
		return err
	}
	lines = append(lines, "node "+crictl)
	for _, ref := range strings.Fields(string(refs)) {
		repo, tag, ok := strings.Cut(path.Base(ref), ":")
		if !ok {
			return fmt.Errorf("kubeadm image %q has no tag", ref)
		}
		var bin, dest string
		switch repo {
		case "etcd": // tag 3.7.0-0: etcd v3.7.0, image revision 0
			v, _, _ := strings.Cut(tag, "-")
			dir := filepath.Join(root, "etcd", "v"+v)
			if err := binaries.BuildEtcd(ctx, "v"+v, dir); err != nil {
				return err
			}
			bin, dest = filepath.Join(dir, binaries.Etcd), "/usr/local/bin/etcd"
		case "coredns":
			if bin, err = buildCoreDNS(ctx, filepath.Join(kdir, "kubeadm"), version, tag, root); err != nil {
				return err
			}
			dest = "/coredns"
		case "pause":
			if bin, err = buildPause(ctx, version, tag, filepath.Join(root, "pause", tag)); err != nil {
				return err
			}
			dest = "/pause"
		default:
			if !slices.Contains(controlPlane, repo) {
				return fmt.Errorf("kubeadm expects image %s, which this build does not know how to make", ref)
			}
			bin, dest = filepath.Join(kdir, repo), "/usr/local/bin/"+repo
		}
		lines = append(lines, strings.Join([]string{"image", ref, bin, dest}, " "))
	}
	fmt.Println(strings.Join(lines, "\n"))
	return nil
}

// buildPause compiles Kubernetes' pause.c, from the k8s.io/kubernetes
// module, statically, as Kubernetes' own build/pause/Makefile does.
func buildPause(ctx context.Context, version, tag, dir string) (string, error) {
	bin := filepath.Join(dir, "pause")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	modDir, err := moduleDir(ctx, os.TempDir(), "k8s.io/kubernetes@"+version)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(modDir, "build", "pause", "linux", "pause.c")
	if _, err := output(ctx, os.TempDir(), "gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v"+tag+"-anonlab", "-o", bin+".tmp", src); err != nil {
		return "", fmt.Errorf("compile pause (gcc and a static libc, Debian's libc6-dev, are needed): %w", err)
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// crictlVersionRE finds the cri-tools release in kind's base-image
// Dockerfile.
var crictlVersionRE = regexp.MustCompile(`(?m)^ARG CRICTL_VERSION="(v[0-9.]+)"`)

// buildCrictl builds crictl, which the kind backend uses in the node to
// follow the kube-apiserver container, at the release kind's own base
// image has (read from the sigs.k8s.io/kind module this repository uses).
func buildCrictl(ctx context.Context, root string) (string, error) {
	kindDir, err := moduleDir(ctx, "", "sigs.k8s.io/kind")
	if err != nil {
		return "", err
	}
	dockerfile, err := os.ReadFile(filepath.Join(kindDir, "images", "base", "Dockerfile"))
	if err != nil {
		return "", err
	}
	m := crictlVersionRE.FindSubmatch(dockerfile)
	if m == nil {
		return "", errors.New("kind's base-image Dockerfile names no CRICTL_VERSION")
	}
	dir := filepath.Join(root, "crictl", string(m[1]))
	if err := binaries.BuildCommand(ctx, "sigs.k8s.io/cri-tools", string(m[1]), "sigs.k8s.io/cri-tools/cmd/crictl", dir); err != nil {
		return "", err
	}
	return filepath.Join(dir, "crictl"), nil
}

// moduleDir downloads mod (path@version, or a path this repository's
// go.mod requires when dir is "") and returns its directory in the module
// cache.
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	out, err := output(ctx, dir, "go", "mod", "download", "-json", mod)
	if err != nil {
		return "", err
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("download %s: %w", mod, err)
	}
	return info.Dir, nil
}

// output runs a command in dir ("": the current directory, this
// repository's module) and returns its stdout; the error carries its
// stderr.
func output(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if dir != "" {
		cmd.Env = append(cmd.Env, "GOFLAGS=-mod=mod")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
