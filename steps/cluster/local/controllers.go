package local

import (
	"path/filepath"

	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

// legacyFlags are kube-apiserver flags a release before 1.24 needs: its
// insecure port (removed in 1.24) would otherwise listen on
// 127.0.0.1:8080, which concurrent labs would fight over.
func legacyFlags(version string) []string {
	if !binaries.ControllerManagerNeeded(version) {
		return nil
	}
	return []string{"--insecure-port=0"}
}

// startControllers runs kube-controller-manager for the releases whose
// ServiceAccount token Secrets it makes (the article reads one): only the
// ServiceAccount controller (a namespace's default ServiceAccount) and the
// token controller (its Secret, signed with the lab's ServiceAccount key),
// as the admin, serving nothing itself.
func (b *Backend) startControllers() error {
	if !binaries.ControllerManagerNeeded(b.opts.version) {
		return nil
	}
	proc, err := start(binaries.KubeControllerManager, filepath.Join(b.bin, binaries.KubeControllerManager), []string{
		"--kubeconfig=" + filepath.Join(b.dir, "admin.kubeconfig"),
		"--controllers=serviceaccount,serviceaccount-token",
		"--service-account-private-key-file=" + filepath.Join(b.dir, "sa.key"),
		"--root-ca-file=" + filepath.Join(b.dir, "ca.crt"),
		"--leader-elect=false",
		"--port=0",        // no insecure port
		"--secure-port=0", // nor a secure one: nothing reads its metrics
	}, filepath.Join(b.dir, "kube-controller-manager.log"), !b.opts.keep)
	if err != nil {
		return err
	}
	b.controllers = proc
	return b.record()
}
