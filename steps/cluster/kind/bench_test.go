package kind

import (
	"context"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// detectBudget is docs/architecture.md's budget from the new kube-apiserver serving to
// the backend's first answer from it.
const detectBudget = 500 * time.Millisecond

// BenchmarkKind times what the issue budgets on a real kind cluster:
// cluster creation, the --anonymous-auth=false manifest edit until the new
// kube-apiserver serves, the whole create-edit-delete cycle, and how long
// after the new apiserver logged "Serving securely" the backend first got
// an answer from it; it fails when any run's detection is over its budget.
func BenchmarkKind(b *testing.B) {
	rt, image := RequireKind(b)
	ctx := context.Background()
	var create, edit, detect, slowestDetect, total time.Duration
	for range b.N {
		start := time.Now()
		be := New(WithRuntime(rt), WithNodeImage(image))
		if err := be.Create(ctx); err != nil {
			b.Fatal(err)
		}
		created := time.Now()
		if err := be.ReconfigureAPIServer(ctx, cluster.APIServerChange{Set: []string{"--anonymous-auth=false"}}); err != nil {
			_ = be.Destroy(ctx)
			b.Fatal(err)
		}
		s := be.LastSwap()
		serving, err := be.APIServerServingSince(ctx)
		if err != nil {
			_ = be.Destroy(ctx)
			b.Fatal(err)
		}
		if err := be.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
		create += created.Sub(start)
		edit += s.Serving.Sub(s.Edited)
		detect += s.FirstAnswer.Sub(serving)
		slowestDetect = max(slowestDetect, s.FirstAnswer.Sub(serving))
		total += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(create.Seconds()/n, "create-s")
	b.ReportMetric(edit.Seconds()/n, "edit-to-serving-s")
	b.ReportMetric(float64(detect.Milliseconds())/n, "detect-ms")
	b.ReportMetric(total.Seconds()/n, "total-s")
	if slowestDetect > detectBudget {
		b.Errorf("the backend first got an answer %s after the new kube-apiserver served, over its budget of %s", slowestDetect.Round(time.Millisecond), detectBudget)
	}
}
