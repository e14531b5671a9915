package kind

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// TestAuditKubeadmConfig checks the lab's audit configuration against the
// kubeadm configuration kind itself generates and patches, for a
// Kubernetes version of each kubeadm API kind uses: the flags and volumes
// reach kube-apiserver's section, in that API's form. kind's generator is
// internal to its module, so a small program built in a module under
// kind's path (testdata/kubeadmconfig) runs it.
func TestAuditKubeadmConfig(t *testing.T) {
	dir := t.TempDir()
	config := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}, {Role: v1alpha4.WorkerRole}}}
	if err := withAudit(config, dir); err != nil {
		t.Fatal(err)
	}
	wantMounts := []v1alpha4.Mount{
		{HostPath: filepath.Join(dir, auditPolicyFile), ContainerPath: nodeAuditPolicy, Readonly: true},
		{HostPath: filepath.Join(dir, auditDir), ContainerPath: nodeAuditDir},
	}
	if got := config.Nodes[0].ExtraMounts; !reflect.DeepEqual(got, wantMounts) {
		t.Errorf("control-plane mounts %+v, want %+v", got, wantMounts)
	}
	if got := config.Nodes[1].ExtraMounts; len(got) > 0 {
		t.Errorf("worker mounts %+v, want none", got)
	}

	generate := buildKubeadmConfig(t)
	wantArgs := map[string]string{
		"audit-policy-file": nodeAuditPolicy,
		"audit-log-path":    nodeAuditDir + "/" + auditLogFile,
		"audit-log-mode":    "blocking",
		"runtime-config":    "", // kind's own, kept
	}
	wantVolumes := []map[string]any{
		{"name": "anonlab-audit-policy", "hostPath": nodeAuditPolicy, "mountPath": nodeAuditPolicy, "readOnly": true, "pathType": "File"},
		{"name": "anonlab-audit-log", "hostPath": nodeAuditDir, "mountPath": nodeAuditDir, "readOnly": false, "pathType": "Directory"},
	}
	cases := []struct {
		Name, Version, API string
	}{
		{"oldest the lab supports", "v1.20.2", "kubeadm.k8s.io/v1beta2"},
		{"last with v1beta3", "v1.35.4", "kubeadm.k8s.io/v1beta3"},
		{"the lab's default", "v1.37.2", "kubeadm.k8s.io/v1beta4"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			cc := clusterConfiguration(t, generate(t, tc.Version, config.KubeadmConfigPatches))
			if cc.APIVersion != tc.API {
				t.Errorf("kind generated %s for %s, want %s (did kind change? see withAudit)", cc.APIVersion, tc.Version, tc.API)
			}
			args := map[string]string{}
			if tc.API == "kubeadm.k8s.io/v1beta4" {
				var list []struct{ Name, Value string }
				if err := cc.APIServer.ExtraArgs.Decode(&list); err != nil {
					t.Fatalf("extraArgs of %s is no list of name and value: %v", tc.API, err)
				}
				for _, a := range list {
					args[a.Name] = a.Value
				}
			} else if err := cc.APIServer.ExtraArgs.Decode(&args); err != nil {
				t.Fatalf("extraArgs of %s is no map: %v", tc.API, err)
			}
			if !reflect.DeepEqual(args, wantArgs) {
				t.Errorf("kube-apiserver's extraArgs %v, want %v", args, wantArgs)
			}
			if !reflect.DeepEqual(cc.APIServer.ExtraVolumes, wantVolumes) {
				t.Errorf("kube-apiserver's extraVolumes %v, want %v", cc.APIServer.ExtraVolumes, wantVolumes)
			}
		})
	}
}

type kubeadmClusterConfiguration struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	APIServer  struct {
		ExtraArgs    yaml.Node        `yaml:"extraArgs"`
		ExtraVolumes []map[string]any `yaml:"extraVolumes"`
	} `yaml:"apiServer"`
}

// clusterConfiguration is the ClusterConfiguration of a kubeadm config.
func clusterConfiguration(t *testing.T, config []byte) kubeadmClusterConfiguration {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(config))
	for {
		var doc kubeadmClusterConfiguration
		err := dec.Decode(&doc)
		if err == io.EOF {
			t.Fatalf("no ClusterConfiguration in\n%s", config)
		}
		if err != nil {
			t.Fatalf("read kind's kubeadm config: %v\n%s", err, config)
		}
		if doc.Kind == "ClusterConfiguration" {
			return doc
		}
	}
}

// buildKubeadmConfig builds testdata/kubeadmconfig with this module's
// requirements and returns a function that runs it.
func buildKubeadmConfig(t *testing.T) func(t *testing.T, version string, patches []string) []byte {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("find this module's go.mod: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	main, err := os.ReadFile(filepath.Join("testdata", "kubeadmconfig", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	// Under sigs.k8s.io/kind/pkg/cluster, which may import its internal
	// packages; the same requirements, so the same kind.
	mod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(mod, []byte("module sigs.k8s.io/kind/pkg/cluster/anonlabkubeadmconfig"))
	for name, data := range map[string][]byte{"go.mod": mod, "go.sum": sum, "main.go": main} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "kubeadmconfig")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	// -mod=mod: the requirements of a module that is not this one may need
	// go.sum lines that this module's go.sum does not have.
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/kubeadmconfig: %v\n%s", err, out)
	}
	return func(t *testing.T, version string, patches []string) []byte {
		t.Helper()
		in, err := json.Marshal(patches)
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, version)
		cmd.Stdin, cmd.Stderr = bytes.NewReader(in), &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kind's kubeadm config for %s: %v: %s", version, err, stderr.String())
		}
		return out
	}
}
