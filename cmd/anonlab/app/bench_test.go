package app

import (
	"os/exec"
	"testing"
	"time"
)

// helpBudget is docs/architecture.md's budget for `anonlab --help`.
const helpBudget = 50 * time.Millisecond

// BenchmarkHelp times `anonlab --help` as a process, start to exit, and
// fails over its budget.
func BenchmarkHelp(b *testing.B) {
	bin := anonlabBinary(b)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil {
			b.Fatalf("anonlab --help: %v\n%s", err, out)
		}
		total += time.Since(start)
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/help")
	if per > helpBudget {
		b.Errorf("anonlab --help took %s, over its budget of %s", per.Round(100*time.Microsecond), helpBudget)
	}
}
