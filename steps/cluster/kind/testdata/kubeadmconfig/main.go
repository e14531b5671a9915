// Command kubeadmconfig prints the kubeadm configuration kind gives the
// control-plane node for a Kubernetes version, with patches applied: kind's
// own generator and patcher, which are internal to kind's module.
// TestAuditKubeadmConfig builds it in a module whose path lies under
// sigs.k8s.io/kind/pkg/cluster, where Go allows those imports.
//
// Usage: kubeadmconfig VERSION < patches.json (a JSON list of YAML strings)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/cluster/internal/kubeadm"
	"sigs.k8s.io/kind/pkg/internal/patch"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kubeadmconfig:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: kubeadmconfig VERSION < patches.json")
	}
	var patches []string
	if err := json.NewDecoder(os.Stdin).Decode(&patches); err != nil {
		return fmt.Errorf("read the patches: %w", err)
	}
	config, err := kubeadm.Config(kubeadm.ConfigData{KubernetesVersion: os.Args[1], ControlPlane: true})
	if err != nil {
		return err
	}
	patched, err := patch.KubeYAML(config, patches, nil)
	if err != nil {
		return err
	}
	_, err = fmt.Print(patched)
	return err
}
