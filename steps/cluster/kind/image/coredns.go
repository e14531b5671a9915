package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/anonlab/anonlab/steps/cluster/binaries"
)

const corednsModule = "github.com/coredns/coredns"

// buildCoreDNS builds CoreDNS at tag (kubeadm's image tag, v1.14.6) with
// the plugins of the Corefile that kubeadm of this release deploys, and
// checks that the binary has each of them. CoreDNS's own main imports
// every plugin (cloud DNS providers, tracers, ...): most of its build,
// none of it used in a kind cluster. The cache directory is named by the
// plugins, so another Corefile builds another binary.
func buildCoreDNS(ctx context.Context, kubeadm, version, tag, root string) (string, error) {
	out, err := output(ctx, os.TempDir(), kubeadm, "init", "phase", "addon", "coredns", "--print-manifest", "--kubernetes-version", version)
	if err != nil {
		return "", fmt.Errorf("ask kubeadm for its CoreDNS manifests: %w", err)
	}
	corefile, err := kubeadmCorefile(out)
	if err != nil {
		return "", err
	}
	directives := corefileDirectives(corefile)
	modDir, err := moduleDir(ctx, os.TempDir(), corednsModule+"@"+tag)
	if err != nil {
		return "", err
	}
	cfg, err := os.ReadFile(filepath.Join(modDir, "plugin.cfg"))
	if err != nil {
		return "", err
	}
	pkgs, err := pluginPackages(string(cfg), directives)
	if err != nil {
		return "", fmt.Errorf("CoreDNS %s: %w", tag, err)
	}
	sum := sha256.Sum256([]byte(strings.Join(pkgs, "\n")))
	dir := filepath.Join(root, "coredns", tag+"-"+hex.EncodeToString(sum[:])[:12])
	if err := binaries.BuildMain(ctx, corednsModule, tag, "coredns", corednsMain(pkgs), dir); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "coredns")
	listed, err := output(ctx, os.TempDir(), bin, "-plugins")
	if err != nil {
		return "", err
	}
	// One plugin name a line (some under a "Server types"-style heading in
	// other releases: any line naming it counts).
	names := strings.Fields(string(listed))
	for _, d := range directives {
		if !slices.Contains(names, d) && !slices.Contains(names, "dns."+d) {
			return "", fmt.Errorf("the CoreDNS built into %s lacks plugin %q of kubeadm's Corefile; it lists:\n%s", dir, d, listed)
		}
	}
	return bin, nil
}

// kubeadmCorefile finds the Corefile in the ConfigMap among the manifests
// kubeadm prints.
func kubeadmCorefile(manifests []byte) (string, error) {
	for doc := range strings.SplitSeq(string(manifests), "\n---") {
		var cm struct {
			Kind string
			Data map[string]string
		}
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			return "", fmt.Errorf("kubeadm's CoreDNS manifests: %w", err)
		}
		if c := cm.Data["Corefile"]; cm.Kind == "ConfigMap" && c != "" {
			return c, nil
		}
	}
	return "", errors.New("kubeadm's CoreDNS manifests have no ConfigMap with a Corefile")
}

// corefileDirectives lists the plugins a Corefile's server blocks use:
// the first word of each line directly inside one, once each.
func corefileDirectives(corefile string) []string {
	var names []string
	depth := 0
	sc := bufio.NewScanner(strings.NewReader(corefile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if f := strings.Fields(strings.TrimSuffix(line, "{")); depth == 1 && len(f) > 0 && f[0] != "}" && !strings.HasPrefix(f[0], "#") && !slices.Contains(names, f[0]) {
			names = append(names, f[0])
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	return names
}

// pluginPackages maps directives to their Go packages by CoreDNS's
// plugin.cfg ("name:package", a short package being one of CoreDNS's own
// plugins), sorted.
func pluginPackages(cfg string, directives []string) ([]string, error) {
	known := map[string]string{}
	for line := range strings.SplitSeq(cfg, "\n") {
		name, pkg, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if !strings.Contains(pkg, "/") {
			pkg = corednsModule + "/plugin/" + pkg
		}
		known[name] = pkg
	}
	var pkgs []string
	for _, d := range directives {
		pkg, ok := known[d]
		if !ok {
			return nil, fmt.Errorf("plugin.cfg has no plugin %q (used by kubeadm's Corefile)", d)
		}
		pkgs = append(pkgs, pkg)
	}
	slices.Sort(pkgs)
	return pkgs, nil
}

// corednsMain is CoreDNS's coredns.go with only the given plugins.
func corednsMain(pkgs []string) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"" + corednsModule + "/coremain\"\n\n")
	for _, p := range pkgs {
		b.WriteString("\t_ \"" + p + "\"\n")
	}
	b.WriteString(")\n\nfunc main() { coremain.Run() }\n")
	return b.String()
}
