package app

import (
	"os/exec"
	"testing"
	"time"
)

// BenchmarkHelp times `anonlab --help` as a process, start to exit.
// Budget (docs/architecture.md): ≤ 50 ms.
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
	verdict := "within budget"
	if per > 50*time.Millisecond {
		verdict = "OVER BUDGET"
	}
	b.Logf("anonlab --help: %s (budget ≤ 50ms, %s)", per.Round(100*time.Microsecond), verdict)
}
