package steps_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/local"
)

// articleBudget is docs/architecture.md's budget for the article on the local
// backend: at most this many times the procedure typed by hand.
const articleBudget = 0.7

// BenchmarkArticleLocal times the article on the local backend against the
// same procedure typed by hand (testdata/baseline.sh: openssl and curl on
// the same binaries), alternating the two so both see the same machine,
// and fails over its budget.
func BenchmarkArticleLocal(b *testing.B) {
	bin, sc := article(b)
	var lab, shell time.Duration
	for b.Loop() {
		ports := freePorts(b, 3)
		start := time.Now()
		out, err := exec.Command("testdata/baseline.sh", bin, ports[0], ports[1], ports[2]).CombinedOutput()
		if err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
		shell += time.Since(start)

		start = time.Now()
		sum := steps.Run(context.Background(), sc, local.New(local.WithBinariesDir(bin)), steps.SinkFunc(func(steps.Event) {}))
		lab += time.Since(start)
		if !sum.OK() {
			b.Fatalf("the article failed on the local backend: %+v", sum)
		}
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(lab.Seconds()/n, "lab-s/op")
	b.ReportMetric(shell.Seconds()/n, "shell-s/op")
	ratio := lab.Seconds() / shell.Seconds()
	b.ReportMetric(ratio, "lab/shell")
	if ratio > articleBudget {
		b.Errorf("anonlab %.2fs, by hand %.2fs: ratio %.2f, over its budget of %.1f", lab.Seconds()/n, shell.Seconds()/n, ratio, articleBudget)
	}
}

func freePorts(b *testing.B, n int) []string {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return out
}

// auditBudget is docs/architecture.md's: kube-apiserver's audit log, and
// the lab following it, add at most this share to the article's time.
const auditBudget = 0.10

// BenchmarkAuditOverhead times the article on the local backend with the
// audit log the lab keeps (and reads, to say why each answer was what it
// was) against the same run without one, alternating the two.
func BenchmarkAuditOverhead(b *testing.B) {
	bin, sc := article(b)
	var with, without time.Duration
	for b.Loop() {
		for _, audit := range []bool{true, false} {
			opts := []local.Option{local.WithBinariesDir(bin)}
			if !audit {
				opts = append(opts, local.WithoutAuditLog())
			}
			start := time.Now()
			sum := steps.Run(context.Background(), sc, local.New(opts...), steps.SinkFunc(func(steps.Event) {}))
			if audit {
				with += time.Since(start)
			} else {
				without += time.Since(start)
			}
			if !sum.OK() {
				b.Fatalf("the article failed on the local backend (audit log %v): %+v", audit, sum)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(with.Seconds()/n, "with-audit-s/op")
	b.ReportMetric(without.Seconds()/n, "without-s/op")
	extra := with.Seconds()/without.Seconds() - 1
	b.ReportMetric(extra*100, "audit-%")
	if extra > auditBudget {
		b.Errorf("with the audit log %.2fs, without %.2fs: +%.0f%%, over its budget of %.0f%%", with.Seconds()/n, without.Seconds()/n, extra*100, auditBudget*100)
	}
}

// article is the article's scenario and the cached binaries it runs on.
func article(b *testing.B) (string, *steps.Scenario) {
	b.Helper()
	bin, err := binaries.Resolve(context.Background(), cluster.DefaultKubernetesVersion)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := steps.Load("anonymous-auth")
	if err != nil {
		b.Fatal(err)
	}
	return bin, sc
}
