package app

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anonlab/anonlab/internal/budget"
)

// helpBudget is docs/architecture.md's budget for `anonlab --help`: at
// most this many times kind's own `kind --help` (cobra over a Kubernetes
// library too), the two timed pair by pair on the same machine.
const helpBudget = 1.5

// BenchmarkHelp times `anonlab --help` and `kind --help` (kind built from
// the version in go.mod) as processes, start to exit, one after the other
// in each iteration, and fails when the median of anonlab's is over its
// budget times the median of kind's.
func BenchmarkHelp(b *testing.B) {
	bins := []string{anonlabBinary(b), kindBinary(b)}
	times := make([][]time.Duration, len(bins))
	for b.Loop() {
		for i, bin := range bins {
			start := time.Now()
			if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil {
				b.Fatalf("%s --help: %v\n%s", bin, err, out)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	lab, kind := median(times[0]), median(times[1])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(lab.Microseconds())/1000, "anonlab-ms")
	b.ReportMetric(float64(kind.Microseconds())/1000, "kind-ms")
	ratio := lab.Seconds() / kind.Seconds()
	b.ReportMetric(ratio, "anonlab/kind")
	budget.Check(b, "anonlab --help / kind --help", ratio, helpBudget, "×",
		fmt.Sprintf("medians of %d pairs: anonlab %s, kind %s", b.N, lab.Round(100*time.Microsecond), kind.Round(100*time.Microsecond)))
}

// kindBinary builds kind's CLI from the module cache (kind is a dependency).
func kindBinary(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "kind")
	if out, err := exec.Command("go", "build", "-o", bin, "sigs.k8s.io/kind").CombinedOutput(); err != nil {
		b.Fatalf("build kind: %v\n%s", err, out)
	}
	return bin
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
