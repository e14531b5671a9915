package steps_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anonlab/anonlab/internal/budget"
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
// and fails over its budget. Its budget line says where each one's time
// went: create (to the first apiserver ready), restart (with
// --anonymous-auth=false, to ready), requests (every other step) and
// cleanup.
func BenchmarkArticleLocal(b *testing.B) {
	bin, sc := article(b)
	var lab, shell time.Duration
	labSplit, shellSplit := split{}, split{}
	for b.Loop() {
		ports := freePorts(b, 3)
		start := time.Now()
		out, err := exec.Command("testdata/baseline.sh", bin, ports[0], ports[1], ports[2]).CombinedOutput()
		if err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
		shell += time.Since(start)
		shellSplit.addShell(b, start, time.Now(), out)

		start = time.Now()
		sum := runSplit(sc, bin, labSplit)
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
	budget.Check(b, "local: the article, anonlab / by hand", ratio, articleBudget, "×",
		fmt.Sprintf("mean of %d: anonlab %.2fs (%s), by hand %.2fs (%s)", b.N, lab.Seconds()/n, labSplit.String(n), shell.Seconds()/n, shellSplit.String(n)))
}

// split is where a run's time went, by phase.
type split map[string]time.Duration

var phases = []string{"create", "restart", "requests", "cleanup"}

func (s split) String(n float64) string {
	var parts []string
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p, s[p].Seconds()/n))
	}
	return strings.Join(parts, ", ")
}

// addShell adds baseline.sh's phases: each "phase NAME NS" line ends one;
// the time after the last is its cleanup.
func (s split) addShell(b *testing.B, start, end time.Time, out []byte) {
	last := start
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "phase" {
			continue
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			b.Fatalf("baseline: %q: %v", line, err)
		}
		at := time.Unix(0, ns)
		s[f[1]] += at.Sub(last)
		last = at
	}
	s["cleanup"] += end.Sub(last)
}

// runSplit runs the article on the local backend and adds each step's
// time, from its start to the next one's, to its phase in s.
func runSplit(sc *steps.Scenario, bin string, s split) steps.Summary {
	at, phase := time.Now(), "create"
	end := func() {
		now := time.Now()
		s[phase] += now.Sub(at)
		at = now
	}
	return steps.Run(context.Background(), sc, local.New(local.WithBinariesDir(bin)), steps.SinkFunc(func(ev steps.Event) {
		switch ev := ev.(type) {
		case steps.StepStarted:
			end()
			switch {
			case ev.Cleanup:
				phase = "cleanup"
			case ev.Step == "create-cluster":
				phase = "create"
			case ev.Step == "disable-anonymous":
				phase = "restart"
			default:
				phase = "requests"
			}
		case steps.Summary:
			end()
		}
	}))
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
	budget.Check(b, "local: the article's time the audit log adds", extra*100, auditBudget*100, "%",
		fmt.Sprintf("mean of %d: with %.2fs, without %.2fs", b.N, with.Seconds()/n, without.Seconds()/n))
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
