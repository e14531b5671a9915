package local

import "testing"

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--anonymous-auth=false", "--profiling=false"}, ""},
		{[]string{"--authorization-mode=Node,RBAC", "--anonymous-auth=false"}, "--authorization-mode=Node,RBAC"},
		{[]string{"--feature-gates=AllAlpha=false", "--secure-port=6443", "--emulated-version=1.36"}, "--feature-gates=AllAlpha=false\n--emulated-version=1.36"},
		{[]string{"--feature-gates", "A=true", "--authorization-config=/etc/authz.yaml"}, "--feature-gates A=true\n--authorization-config=/etc/authz.yaml"},
		{[]string{"--feature-gates-extra=x"}, ""}, // another flag, not a prefix match
	} {
		if got := policy(tc.args); got != tc.want {
			t.Errorf("policy(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
