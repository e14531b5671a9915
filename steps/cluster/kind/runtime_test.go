package kind

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/anonlab/anonlab/steps/cluster"
)

func TestParseDockerInfo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name    string
		Out     string
		Version string
		Cgroup  int
		Err     string
	}{
		{"cgroup v1", `{"ServerVersion":"20.10.24+dfsg1","CgroupVersion":"1","CgroupDriver":"cgroupfs"}`, "20.10.24+dfsg1", 1, ""},
		{"cgroup v2", `{"ServerVersion":"28.2.2","CgroupVersion":"2"}`, "28.2.2", 2, ""},
		{"daemon down", `{"ServerVersion":"","CgroupVersion":"","ServerErrors":["Cannot connect to the Docker daemon"]}`, "", 0, "Cannot connect"},
		{"no cgroup version", `{"ServerVersion":"19.03"}`, "", 0, "cgroup version"},
		{"not JSON", `Error response`, "", 0, "docker info"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			v, cg, err := parseDockerInfo([]byte(tc.Out))
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("err = %v, want one with %q", err, tc.Err)
				}
				return
			}
			if err != nil || v != tc.Version || cg != tc.Cgroup {
				t.Errorf("parseDockerInfo = %q, %d, %v; want %q, %d", v, cg, err, tc.Version, tc.Cgroup)
			}
		})
	}
}

func TestParsePodmanInfo(t *testing.T) {
	t.Parallel()
	v, cg, err := parsePodmanInfo([]byte(`{"host":{"cgroupVersion":"v2","cgroupManager":"systemd"},"version":{"Version":"4.3.1"}}`))
	if err != nil || v != "4.3.1" || cg != 2 {
		t.Errorf("parsePodmanInfo = %q, %d, %v; want 4.3.1, 2", v, cg, err)
	}
	if _, _, err := parsePodmanInfo([]byte(`{"host":{}}`)); err == nil {
		t.Error("parsePodmanInfo without a cgroup version: no error")
	}
}

func TestRefusesCgroupV1(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"v1.34.4": false, "v1.35.0": true, "v1.37.2": true, "v2.0.0": true, "garbage": false} {
		if got := refusesCgroupV1(v); got != want {
			t.Errorf("refusesCgroupV1(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestParseContainers(t *testing.T) {
	t.Parallel()
	out := `{"containers":[
	  {"id":"4f1c2a","podSandboxId":"9a","metadata":{"name":"kube-apiserver","attempt":1},"state":"CONTAINER_RUNNING","createdAt":"1795788153123456789"},
	  {"id":"77b0e1","podSandboxId":"9a","metadata":{"name":"kube-apiserver","attempt":0},"state":"CONTAINER_EXITED","createdAt":"1795788100000000000"}]}`
	cs, err := parseContainers([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []container{
		{ID: "4f1c2a", Sandbox: "9a", State: runningState, Attempt: 1, Created: time.Unix(0, 1795788153123456789)},
		{ID: "77b0e1", Sandbox: "9a", State: "CONTAINER_EXITED", Created: time.Unix(0, 1795788100000000000)},
	}
	if !slices.EqualFunc(cs, want, func(a, b container) bool { return a == b }) {
		t.Errorf("parseContainers = %+v, want %+v", cs, want)
	}
	if _, err := parseContainers([]byte(`{"containers":[{"id":"x","createdAt":"soon"}]}`)); err == nil {
		t.Error("parseContainers with a bad createdAt: no error")
	}
}

func TestAPIServerLog(t *testing.T) {
	t.Parallel()
	log := `2026-11-27T14:22:31.100000000Z I1127 14:22:31.099 1 options.go:249] external host was not specified
2026-11-27T14:22:33.123456789Z I1127 14:22:33.123 1 secure_serving.go:211] Serving securely on [::]:6443
`
	at, ok := servingSince([]byte(log))
	if !ok || !at.Equal(time.Date(2026, 11, 27, 14, 22, 33, 123456789, time.UTC)) {
		t.Errorf("servingSince = %v, %v", at, ok)
	}
	failed := []string{
		"I1127 14:22:31.099 1 options.go:249] external host was not specified",
		`E1127 14:22:34.000 1 run.go:72] "command failed" err="anonymous: Forbidden: --anonymous-auth flag cannot be set when anonymous field is configured in authentication configuration file"`,
		"",
	}
	if got := cluster.LastErrorLine(failed); got != failed[1] {
		t.Errorf("LastErrorLine = %q", got)
	}
}

func TestRunOutput(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("create: %w", &kindexec.RunError{Command: []string{"kubeadm", "init"}, Output: []byte(`I1127 15:12:31 waiting for the control plane
error execution phase wait-control-plane: could not initialize a Kubernetes cluster
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).Run.func1
	k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow/runner.go:260
main.main
	k8s.io/kubernetes/cmd/kubeadm/kubeadm.go:25
runtime.goexit
`)})
	want := "\nI1127 15:12:31 waiting for the control plane\nerror execution phase wait-control-plane: could not initialize a Kubernetes cluster"
	if got := runOutput(err); got != want {
		t.Errorf("runOutput = %q, want %q", got, want)
	}
	if got := runOutput(errors.New("plain")); got != "" {
		t.Errorf("runOutput of a plain error = %q", got)
	}
}
