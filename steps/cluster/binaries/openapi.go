package binaries

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The OpenAPI definitions kube-apiserver serves are generated code. Until
// the release that committed them, k8s.io/kubernetes' module lacks this
// file (its build made it), so cmd/kube-apiserver does not compile from
// the module alone.
const (
	openAPIPackage = "k8s.io/kubernetes/pkg/generated/openapi"
	openAPIFile    = "pkg/generated/openapi/zz_generated.openapi.go"
)

// openAPIExcluded are the staging modules the release's own generation
// left out of pkg/generated/openapi (build/root/Makefile.generated_files:
// KUBE_OPENAPI_TAG_FILES).
var openAPIExcluded = []string{"k8s.io/code-generator", "k8s.io/sample-apiserver"}

// sourceCopy makes dst a writable copy of the module directory src, unless
// a complete one (with the generated file) is there already.
func sourceCopy(src, dst string) (complete bool, err error) {
	if _, err := os.Stat(filepath.Join(dst, openAPIFile)); err == nil {
		return true, nil
	}
	if err := os.RemoveAll(dst); err != nil { // an interrupted copy or generation
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return false, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return false, nil
}

// generateOpenAPI writes openAPIFile into the module copy src as the
// release's build did: openapi-gen at the kube-openapi version the release
// requires, over every package of k8s.io/kubernetes and of its staging
// modules with a +k8s:openapi-gen tag, run in the build module dir (which
// replaces k8s.io/kubernetes by src) so that it resolves them.
func (b builder) generateOpenAPI(km kubernetesModule, dir, src, work string) error {
	tools := filepath.Join(work, "tools")
	mf, err := b.moduleFile("k8s.io/kube-openapi", km.openAPIVersion, work)
	if err != nil {
		return err
	}
	gomod := fmt.Sprintf("module anonlab.local/build/openapi-gen\n\ngo %s\n\nrequire k8s.io/kube-openapi %s\n", mf.Go.Version, km.openAPIVersion)
	m, err := b.module(filepath.Join(work, "openapi-gen"), gomod, toolsSource("k8s.io/kube-openapi/cmd/openapi-gen"), tools, "-s -w", "k8s.io/kube-openapi/cmd/openapi-gen")
	if err != nil {
		return err
	}
	if err := b.compile(m); err != nil {
		return err
	}
	roots := map[string]string{"k8s.io/kubernetes": src}
	args := []string{"mod", "download", "-json"}
	for _, m := range km.staging {
		if !slices.Contains(openAPIExcluded, m) {
			args = append(args, m+"@"+km.stagingVersion)
		}
	}
	out, _ := b.goOutput(dir, args...) // a module that failed says so in its JSON
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("download the staging modules: %w", err)
		}
		if m.Error == "" && m.Dir != "" {
			roots[m.Path] = m.Dir
		}
	}
	var pkgs []string
	for mod, root := range roots {
		p, err := openAPIPackages(mod, root)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, p...)
	}
	slices.Sort(pkgs)
	gen := filepath.Join(work, "openapi")
	if err := b.run(dir, "generate "+openAPIFile+" ("+fmt.Sprint(len(pkgs))+" packages)", filepath.Join(tools, "openapi-gen"),
		"-i", strings.Join(pkgs, ","),
		"-p", openAPIPackage,
		"-O", strings.TrimSuffix(path.Base(openAPIFile), ".go"),
		"-h", filepath.Join(src, "hack", "boilerplate", "boilerplate.generatego.txt"),
		"-r", filepath.Join(work, "openapi-violations.txt"),
		"-o", gen); err != nil {
		return err
	}
	// Written last: its presence marks the copy complete.
	return os.Rename(filepath.Join(gen, openAPIPackage, path.Base(openAPIFile)), filepath.Join(src, openAPIFile))
}

var k8sTag = regexp.MustCompile(`(?m)^// *\+k8s:`)

// openAPIPackages lists the packages of the module mod in root that have a
// file with a +k8s:openapi-gen tag, as the release's Makefile found them
// (hack/make-rules/helpers/cache_go_dirs.sh: no vendor, _* or .* at the top).
func openAPIPackages(mod, root string) ([]string, error) {
	var pkgs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if top := !strings.Contains(rel, string(filepath.Separator)); top && (rel == "vendor" || strings.HasPrefix(rel, "_") || strings.HasPrefix(rel, ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if k8sTag.Match(data) && bytes.Contains(data, []byte("+k8s:openapi-gen=")) {
			pkgs = append(pkgs, path.Join(mod, filepath.ToSlash(filepath.Dir(rel))))
		}
		return nil
	})
	slices.Sort(pkgs)
	return slices.Compact(pkgs), err
}
