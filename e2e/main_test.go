// Package e2e runs the lab's scenarios as sigs.k8s.io/e2e-framework
// features on a real control plane: one feature per scenario, one
// assessment per step, executed by the engine that `anonlab run` and the
// TUI use.
//
//	go test -v ./e2e -args --backend kind --kubernetes-version v1.35.8 --node-image kindest/node:v1.35.8
//	go test -v ./e2e -args --feature anonymous-auth --assess anonymous-api
//	go test -v ./e2e -args --backend existing --kubeconfig ~/.kube/config --context lab
package e2e

import (
	"flag"
	"os"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"

	"github.com/anonlab/anonlab/e2e/lab"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/backends"
)

// clusterName is the key the suite's cluster is stored under in the context.
const clusterName = "anonlab-e2e"

// The lab's flags, beside e2e-framework's own (--feature, --assess,
// --labels, --skip-labels, --fail-fast, ...).
var (
	backend       = flag.String("backend", "local", "where the control plane comes from: "+strings.Join(backends.Names, ", "))
	version       = flag.String("kubernetes-version", cluster.DefaultKubernetesVersion, "Kubernetes release")
	nodeImage     = flag.String("node-image", "", "kind backend: node image (default: the kind backend's image for --kubernetes-version)")
	binariesDir   = flag.String("binaries-dir", "", "local backend: use kube-apiserver and etcd from this directory")
	scenarioFiles stringList
)

func init() {
	flag.Var(&scenarioFiles, "scenario-file", "run the scenario in this YAML file instead of the embedded ones (repeatable)")
}

var testenv env.Environment

func TestMain(m *testing.M) {
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		klog.Fatalf("e2e flags: %v", err)
	}
	testenv = env.NewWithConfig(cfg)
	// Listing tests (-list, --dry-run) needs no cluster; -short (make unit)
	// wants none.
	if !cfg.DryRunMode() && !testing.Short() {
		provider := lab.NewProvider(*backend).WithVersion(*version).WithPath(*binariesDir)
		testenv.Setup(envfuncs.CreateClusterWithOpts(provider, clusterName,
			lab.WithNodeImage(*nodeImage), lab.WithKubeconfig(cfg.KubeconfigFile(), cfg.KubeContext())))
		testenv.Finish(envfuncs.DestroyCluster(clusterName))
	}
	os.Exit(testenv.Run(m))
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real control plane: run without -short (make test, make e2e)")
	}
}
