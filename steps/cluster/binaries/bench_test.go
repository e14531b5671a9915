package binaries_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/anonlab/anonlab/internal/budget"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/binaries"
	"github.com/anonlab/anonlab/steps/cluster/binaries/binariestest"
)

// docs/architecture.md's budgets for getting the binaries.
const (
	downloadBudget = 10 * time.Second
	fallbackBudget = 5 * time.Second
)

// BenchmarkDownload times Resolve into an empty cache from a loopback
// envtest index serving an archive of the lab's own kube-apiserver, etcd
// (and kubectl when cached): fetch, SHA-512 check, unpack and install.
func BenchmarkDownload(b *testing.B) {
	real, err := binaries.Resolve(context.Background(), cluster.DefaultKubernetesVersion)
	if err != nil {
		b.Fatal(err)
	}
	srv := binariestest.NewServer(b, cluster.DefaultKubernetesVersion, binariestest.FilesIn(b, real))
	var worst time.Duration
	for b.Loop() {
		root := b.TempDir()
		start := time.Now()
		if _, err := binaries.Resolve(context.Background(), cluster.DefaultKubernetesVersion,
			binaries.WithCacheDir(root), binaries.WithSource(binaries.SourceDownload), binaries.WithIndexURL(srv.IndexURL)); err != nil {
			b.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		_ = os.RemoveAll(root) // ~150 MB each
	}
	b.ReportMetric(worst.Seconds(), "s/download-worst")
	budget.Check(b, "binaries: download into an empty cache (slowest)", worst.Seconds(), downloadBudget.Seconds(), " s",
		fmt.Sprintf("%d downloads from an envtest index on 127.0.0.1", b.N))
}

// BenchmarkFallback times auto from the start to the build's start when
// the index takes connections and never answers (the build then fails at
// once: no go on $PATH).
func BenchmarkFallback(b *testing.B) {
	b.Setenv("PATH", b.TempDir())
	index := binariestest.Silent(b)
	var worst time.Duration
	for b.Loop() {
		start := time.Now()
		var fellBack time.Duration
		ctx := cluster.WithProgress(context.Background(), func(p cluster.Progress) {
			if p.Phase == "download" && p.Done {
				fellBack = time.Since(start)
			}
		})
		_, err := binaries.Resolve(ctx, cluster.DefaultKubernetesVersion, binaries.WithCacheDir(b.TempDir()),
			binaries.WithSource(binaries.SourceAuto), binaries.WithIndexURL(index))
		if err == nil || fellBack == 0 {
			b.Fatalf("no fallback reported (error %v)", err)
		}
		worst = max(worst, fellBack)
	}
	b.ReportMetric(worst.Seconds(), "s/fallback-worst")
	budget.Check(b, "binaries: auto falls back to the build (slowest)", worst.Seconds(), fallbackBudget.Seconds(), " s",
		fmt.Sprintf("%d runs against an index that never answers", b.N))
}
