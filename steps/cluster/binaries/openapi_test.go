package binaries

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The packages openapi-gen is run over are those the release's Makefile
// found: a +k8s:openapi-gen tag in a file that has a +k8s: comment line,
// not under vendor, _* or .* at the top.
func TestOpenAPIPackages(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"pkg/apis/a/doc.go":      "// +k8s:openapi-gen=true\n\npackage a\n",
		"pkg/apis/a/types.go":    "// +k8s:openapi-gen=true\n\npackage a\n",
		"pkg/apis/a/sub/doc.go":  "// +k8s:deepcopy-gen=package\n// +k8s:openapi-gen=false\n\npackage sub\n",
		"pkg/apis/b/doc.go":      "// +k8s:deepcopy-gen=package\n\npackage b\n",
		"pkg/apis/c/doc.go":      "/* +k8s:openapi-gen=true */\n\npackage c\n",
		"doc.go":                 "// +k8s:openapi-gen=true\n\npackage root\n",
		"vendor/v/doc.go":        "// +k8s:openapi-gen=true\n\npackage v\n",
		"_output/o/doc.go":       "// +k8s:openapi-gen=true\n\npackage o\n",
		".git/g/doc.go":          "// +k8s:openapi-gen=true\n\npackage g\n",
		"pkg/vendor/keep/doc.go": "//  +k8s:openapi-gen=true\n\npackage keep\n",
	}
	for name, src := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := openAPIPackages("k8s.io/x", root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"k8s.io/x", "k8s.io/x/pkg/apis/a", "k8s.io/x/pkg/apis/a/sub", "k8s.io/x/pkg/vendor/keep"}
	if !slices.Equal(got, want) {
		t.Errorf("openAPIPackages = %q, want %q", got, want)
	}
}

func TestCommands(t *testing.T) {
	cases := []struct {
		version string
		want    []string
	}{
		{"v1.20.2", []string{KubeAPIServer, Etcd, KubeControllerManager}},
		{"v1.23.17", []string{KubeAPIServer, Etcd, KubeControllerManager}},
		{"v1.24.0", []string{KubeAPIServer, Etcd}},
		{"v1.37.2", []string{KubeAPIServer, Etcd}},
		{"", []string{KubeAPIServer, Etcd}},
	}
	for _, tc := range cases {
		if got := Commands(tc.version); !slices.Equal(got, tc.want) {
			t.Errorf("Commands(%q) = %q, want %q", tc.version, got, tc.want)
		}
	}
}

// envtest's archives have no kube-controller-manager: a release that
// needs one is never taken from them.
func TestNoDownloadBefore124(t *testing.T) {
	_, err := Resolve(t.Context(), "v1.20.2", WithCacheDir(t.TempDir()), WithSource(SourceDownload))
	if err == nil || !strings.Contains(err.Error(), "envtest's releases have no kube-controller-manager") {
		t.Errorf("download of v1.20.2: %v, want the refusal saying why", err)
	}
}
