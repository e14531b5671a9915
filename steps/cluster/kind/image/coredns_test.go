package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestKubeadmCorednsPlugins reads the plugins of the Corefile in the
// manifests kubeadm v1.37.2 prints (`kubeadm init phase addon coredns
// --print-manifest`) and maps them to CoreDNS's packages.
func TestKubeadmCorednsPlugins(t *testing.T) {
	manifests, err := os.ReadFile("testdata/kubeadm-coredns-v1.37.2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	corefile, err := kubeadmCorefile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	got := corefileDirectives(corefile)
	want := []string{"errors", "health", "ready", "kubernetes", "prometheus", "forward", "cache", "loop", "reload", "loadbalance"}
	if !slices.Equal(got, want) {
		t.Errorf("directives = %q, want %q", got, want)
	}
	cfg := "# comment\nprometheus:metrics\nerrors:errors\nhealth:health\nready:ready\nkubernetes:kubernetes\nforward:forward\n" +
		"cache:cache\nloop:loop\nreload:reload\nloadbalance:loadbalance\nexternal:example.org/plugin/external\nroute53:route53\n"
	pkgs, err := pluginPackages(cfg, got)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != len(want) || !slices.Contains(pkgs, "github.com/coredns/coredns/plugin/metrics") || slices.Contains(pkgs, "github.com/coredns/coredns/plugin/route53") {
		t.Errorf("packages = %q, want the ten of the Corefile, prometheus as plugin/metrics", pkgs)
	}
	if pkgs, _ := pluginPackages(cfg, []string{"external"}); !slices.Equal(pkgs, []string{"example.org/plugin/external"}) {
		t.Errorf("an external plugin maps to %q, want its own package", pkgs)
	}
	if _, err := pluginPackages(cfg, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("an unknown directive: %v, want an error naming it", err)
	}
	main := corednsMain(pkgs)
	if !strings.Contains(main, "coremain.Run()") || !strings.Contains(main, "\t_ \"github.com/coredns/coredns/plugin/metrics\"\n") {
		t.Errorf("main:\n%s", main)
	}
}

// TestCorefileDirectives: nested blocks, comments, several server blocks.
func TestCorefileDirectives(t *testing.T) {
	got := corefileDirectives(".:53 {\n    errors\n    # log\n    cache 30 {\n       disable success x\n    }\n}\nexample.org {\n    whoami\n    errors\n}\n")
	if want := []string{"errors", "cache", "whoami"}; !slices.Equal(got, want) {
		t.Errorf("directives = %q, want %q", got, want)
	}
	if _, err := kubeadmCorefile([]byte("kind: Service\n---\nkind: ConfigMap\ndata: {other: x}\n")); err == nil {
		t.Error("manifests with no Corefile: no error")
	}
}
