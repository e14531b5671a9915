package kind

import (
	"strings"
	"testing"

	"github.com/anonlab/anonlab/steps/cluster"
)

// TestDescribeChange checks the commands shown for a manifest edit: in
// terms of $NODE, $KUBE_APISERVER_MANIFEST and $MANIFESTS, the backup only
// until the lab has made it. TestHandsOnOnKind runs them on a real node.
func TestDescribeChange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name     string
		Runtime  string
		BackedUp bool
		Change   cluster.APIServerChange
		Want     []string
	}{
		{
			Name:    "a flag",
			Runtime: "docker",
			Change:  cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}},
			Want: []string{
				`docker exec "$NODE" sh -c '[ -e /etc/kubernetes/kube-apiserver.yaml.orig ] || cp -p /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kube-apiserver.yaml.orig'`,
				`docker exec "$NODE" sed -i -E -e '/^[[:space:]]*- ['\''"]?(--anonymous-auth)(=|['\''"]?$)/d' -e '/^    - kube-apiserver$/a\    - --anonymous-auth=false' "$KUBE_APISERVER_MANIFEST"`,
			},
		},
		{
			Name:     "a file from the scenario's manifests, backed up already, on podman",
			Runtime:  "podman",
			BackedUp: true,
			Change: cluster.APIServerChange{
				Set:     []string{"--authentication-config=$(FILES)/authn.yaml"},
				Files:   map[string][]byte{"authn.yaml": []byte("kind: AuthenticationConfiguration\n"), "odd name.yaml": nil},
				Sources: map[string]string{"authn.yaml": "authn-health-only.yaml", "odd name.yaml": "it's.yaml"},
			},
			Want: []string{
				`podman exec -i "$NODE" sh -c 'mkdir -p /etc/kubernetes/pki/anonlab && cat > /etc/kubernetes/pki/anonlab/authn.yaml' < "$MANIFESTS/authn-health-only.yaml"`,
				`podman exec -i "$NODE" sh -c 'mkdir -p /etc/kubernetes/pki/anonlab && cat > /etc/kubernetes/pki/anonlab/'\''odd name.yaml'\''' < "$MANIFESTS"/'it'\''s.yaml'`,
				`podman exec "$NODE" sed -i -E -e '/^[[:space:]]*- ['\''"]?(--authentication-config)(=|['\''"]?$)/d' -e '/^    - kube-apiserver$/a\    - --authentication-config=/etc/kubernetes/pki/anonlab/authn.yaml' "$KUBE_APISERVER_MANIFEST"`,
			},
		},
		{
			Name:     "a file whose source is not named",
			Runtime:  "docker",
			BackedUp: true,
			Change:   cluster.APIServerChange{Remove: []string{"--authentication-config"}, Files: map[string][]byte{"authn.yaml": nil}},
			Want: []string{
				`# authn.yaml: the change names no manifest it comes from`,
				`docker exec "$NODE" sed -i -E -e '/^[[:space:]]*- ['\''"]?(--authentication-config)(=|['\''"]?$)/d' "$KUBE_APISERVER_MANIFEST"`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			b := &Backend{rt: Runtime{Name: tc.Runtime}, backedUp: tc.BackedUp}
			got := strings.Split(b.DescribeChange(tc.Change), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.Want, "\n") {
				t.Errorf("DescribeChange:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.Want, "\n"))
			}
		})
	}
}
