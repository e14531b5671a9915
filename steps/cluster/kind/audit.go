package kind

import (
	"fmt"
	"path/filepath"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	sigsyaml "sigs.k8s.io/yaml"
)

// kube-apiserver's audit log, as the lab sets it up on kind: the policy and
// a directory of the backend's private directory are mounted into the node
// (kind's extraMounts), and from the node into the kube-apiserver Pod
// (kubeadm's extraVolumes). kube-apiserver writes the log as root; the lab
// reads it on the host, where the file is its own.
const (
	// auditPolicyFile is manifests/audit-policy.yaml, in the backend's
	// directory and, read-only, in the node at nodeAuditPolicy.
	auditPolicyFile = "audit-policy.yaml"
	nodeAuditPolicy = "/etc/kubernetes/anonlab/audit-policy.yaml"
	// auditDir holds the log, in the backend's directory (0700) and in the
	// node at nodeAuditDir.
	auditDir     = "audit"
	nodeAuditDir = "/var/log/kubernetes/anonlab"
	auditLogFile = "audit.log"
)

// AuditLogPath implements cluster.AuditLogReader: kube-apiserver's audit
// log (audit.k8s.io/v1 events, one a line, Metadata level) on this
// machine; empty until Create.
func (b *Backend) AuditLogPath() string {
	if b.dir == "" {
		return ""
	}
	return filepath.Join(b.dir, auditDir, auditLogFile)
}

// withAudit adds to config what gives kube-apiserver the lab's audit
// policy and log, whose files audit.Prepare put in dir: mounts into the
// control-plane nodes, and a kubeadm patch with the flags and the Pod's
// volumes.
//
// The patch has no apiVersion and its extraArgs is a map, so that it fits
// the kubeadm configuration kind generates for every Kubernetes version:
// v1beta2 (before 1.23) and v1beta3 (before 1.36), whose extraArgs is a
// map, and v1beta4, whose extraArgs is a list of name and value, to which
// kind converts the map of a patch that names no apiVersion. extraVolumes
// has the same form in all three. TestAuditKubeadmConfig checks this
// against kind's own generator.
func withAudit(config *v1alpha4.Cluster, dir string) error {
	type hostPathMount struct {
		Name      string `json:"name"`
		HostPath  string `json:"hostPath"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
		PathType  string `json:"pathType"`
	}
	patch := map[string]any{
		"kind": "ClusterConfiguration",
		"apiServer": map[string]any{
			"extraArgs": map[string]string{
				"audit-policy-file": nodeAuditPolicy,
				"audit-log-path":    nodeAuditDir + "/" + auditLogFile,
				// The log backend's default, said because the lab relies on
				// it: the request's own goroutine writes its event, before
				// the request ends.
				"audit-log-mode": "blocking",
			},
			"extraVolumes": []hostPathMount{
				{Name: "anonlab-audit-policy", HostPath: nodeAuditPolicy, MountPath: nodeAuditPolicy, ReadOnly: true, PathType: "File"},
				{Name: "anonlab-audit-log", HostPath: nodeAuditDir, MountPath: nodeAuditDir, PathType: "Directory"},
			},
		},
	}
	raw, err := sigsyaml.Marshal(patch)
	if err != nil {
		return fmt.Errorf("render the kubeadm patch for the audit log: %w", err)
	}
	config.KubeadmConfigPatches = append(config.KubeadmConfigPatches, string(raw))
	found := false
	for i := range config.Nodes {
		if config.Nodes[i].Role != v1alpha4.ControlPlaneRole {
			continue
		}
		found = true
		config.Nodes[i].ExtraMounts = append(config.Nodes[i].ExtraMounts,
			v1alpha4.Mount{HostPath: filepath.Join(dir, auditPolicyFile), ContainerPath: nodeAuditPolicy, Readonly: true},
			v1alpha4.Mount{HostPath: filepath.Join(dir, auditDir), ContainerPath: nodeAuditDir},
		)
	}
	if !found {
		return fmt.Errorf("mount the audit log: the kind configuration has no %s node", v1alpha4.ControlPlaneRole)
	}
	return nil
}
