package binaries

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/semver"

	"github.com/anonlab/anonlab/steps/cluster"
)

// Install puts the kube-apiserver and etcd (and kubectl, if there) of
// directory from into the cache directory of version, replacing what is
// there, and returns that directory. It holds the build lock meanwhile,
// and the cache directory is never seen half installed: the files go into
// a scratch directory beside it, which then takes its place. from should
// be on the cache's file system (see ScratchDir), or the files are copied.
func Install(ctx context.Context, version, from string, opts ...Option) (string, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if !semver.IsValid(version) || semver.Major(version) != "v1" {
		return "", fmt.Errorf("kubernetes version %q: want a release such as %s", version, cluster.DefaultKubernetesVersion)
	}
	if err := complete(from, version); err != nil {
		return "", err
	}
	root, err := cacheRoot(o)
	if err != nil {
		return "", err
	}
	unlock, err := lockCache(ctx, root)
	if err != nil {
		return "", err
	}
	defer unlock()
	dir := filepath.Join(root, version)
	stage, err := os.MkdirTemp(root, "."+version+".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	for _, name := range []string{KubeAPIServer, Etcd, KubeControllerManager, Kubectl} {
		src := filepath.Join(from, name)
		if _, err := os.Stat(src); os.IsNotExist(err) && (name == Kubectl || name == KubeControllerManager && !ControllerManagerNeeded(version)) {
			continue
		}
		if err := move(src, filepath.Join(stage, name)); err != nil {
			return "", fmt.Errorf("install %s into %s: %w", name, dir, err)
		}
	}
	if err := swap(stage, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// swap puts stage, a directory beside dir with all its files, in dir's
// place, so that dir is never seen half installed. The caller holds the
// build lock.
func swap(stage, dir string) error {
	if err := os.Chmod(stage, 0o755); err != nil {
		return err
	}
	// The old directory steps aside before the new one takes its place; a
	// process that runs its binaries keeps them (they stay open).
	old := stage + ".old"
	if err := os.Rename(dir, old); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	defer os.RemoveAll(old)
	if err := os.Rename(stage, dir); err != nil {
		_ = os.Rename(old, dir)
		return fmt.Errorf("install binaries into %s: %w", dir, err)
	}
	return nil
}

// ScratchDir makes a directory on the cache's file system for files that
// Install will move into the cache; the caller removes it.
func ScratchDir(opts ...Option) (string, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	root, err := cacheRoot(o)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create cache %s: %w", root, err)
	}
	return os.MkdirTemp(root, ".scratch-")
}

func cacheRoot(o options) (string, error) {
	if o.cacheDir != "" {
		return o.cacheDir, nil
	}
	return CacheRoot()
}

// move renames src to dst, or copies it when they are on different file
// systems.
func move(src, dst string) error {
	if os.Rename(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
