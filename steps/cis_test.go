package steps

import (
	"errors"
	"testing"
)

func TestAudit(t *testing.T) {
	healthOnly := []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n  conditions:\n  - path: /livez\n  - path: /readyz\n  - path: /healthz\n")
	everywhere := []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n")
	withVersion := []byte("anonymous:\n  enabled: true\n  conditions:\n  - path: /livez\n  - path: /version\n")
	files := map[string][]byte{"/h.yaml": healthOnly, "/e.yaml": everywhere, "/v.yaml": withVersion}
	read := func(p string) ([]byte, error) {
		if d, ok := files[p]; ok {
			return d, nil
		}
		return nil, errors.New("no such file")
	}
	cases := []struct {
		name string
		args []string
		want map[string]bool
	}{
		{"kubeadm defaults", []string{"--authorization-mode=Node,RBAC"}, map[string]bool{"1.2.1": false, "1.2.6": true, "1.2.7": true, "1.2.8": true}},
		{"anonymous off", []string{"--anonymous-auth=false", "--authorization-mode=Node,RBAC"}, map[string]bool{"1.2.1": true}},
		{"anonymous explicitly on", []string{"--anonymous-auth=true"}, map[string]bool{"1.2.1": false}},
		{"no authorization mode", nil, map[string]bool{"1.2.6": false, "1.2.7": false, "1.2.8": false}},
		{"AlwaysAllow", []string{"--authorization-mode=AlwaysAllow"}, map[string]bool{"1.2.6": false}},
		{"RBAC only", []string{"--authorization-mode=RBAC"}, map[string]bool{"1.2.6": true, "1.2.7": false, "1.2.8": true}},
		{"health paths only", []string{"--authentication-config=/h.yaml"}, map[string]bool{"1.2.1": true}},
		{"anonymous everywhere by config", []string{"--authentication-config=/e.yaml"}, map[string]bool{"1.2.1": false}},
		{"a non-health path", []string{"--authentication-config=/v.yaml"}, map[string]bool{"1.2.1": false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			results, err := cisAudit(tc.args, read)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if want, ok := tc.want[r.control.id]; ok && r.pass != want {
					t.Errorf("%s: pass=%v (%s), want %v", r.control.id, r.pass, r.why, want)
				}
			}
		})
	}
	if _, err := cisAudit([]string{"--authentication-config=/missing.yaml"}, read); err == nil {
		t.Error("a missing AuthenticationConfiguration was not reported")
	}
}
