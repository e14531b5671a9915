package kind

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// detectBudget is docs/architecture.md's budget from the new kube-apiserver serving to
// the backend's first answer from it.
const detectBudget = 500 * time.Millisecond

// observeBudget is issue 11's budget from a request to its observation in
// the audit log, on kind.
const observeBudget = time.Second

// observations is how many requests each run times to their observation.
const observations = 5

// BenchmarkKind times what the issues budget on a real kind cluster:
// cluster creation, an anonymous request until its observation in the
// audit log, the --anonymous-auth=false manifest edit until the new
// kube-apiserver serves, the whole create-edit-delete cycle, and how long
// after the new apiserver logged "Serving securely" the backend first got
// an answer from it; it fails when any run's detection or observation is
// over its budget.
func BenchmarkKind(b *testing.B) {
	rt, image := RequireKind(b)
	ctx := context.Background()
	var create, edit, detect, slowestDetect, observe, slowestObserve, total time.Duration
	for range b.N {
		start := time.Now()
		be := New(WithRuntime(rt), WithNodeImage(image))
		if err := be.Create(ctx); err != nil {
			b.Fatal(err)
		}
		created := time.Now()
		if err := observeAnonymous(ctx, b, be, func(took time.Duration) {
			observe += took
			slowestObserve = max(slowestObserve, took)
		}); err != nil {
			_ = be.Destroy(ctx)
			b.Fatal(err)
		}
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
	b.ReportMetric(float64(observe.Milliseconds())/n/observations, "observe-ms")
	if slowestDetect > detectBudget {
		b.Errorf("the backend first got an answer %s after the new kube-apiserver served, over its budget of %s", slowestDetect.Round(time.Millisecond), detectBudget)
	}
	if slowestObserve > observeBudget {
		b.Errorf("an observation came %s after its request was sent, over its budget of %s", slowestObserve.Round(time.Millisecond), observeBudget)
	}
}

// observeAnonymous times anonymous requests from sending each to receiving
// its observation from the audit log.
func observeAnonymous(ctx context.Context, b *testing.B, be *Backend, took func(time.Duration)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs, _, err := followLab(ctx, be)
	if err != nil {
		return err
	}
	client := anonymousClient(b, be.Info())
	for i := range observations {
		_, _, d, err := sendObserved(ctx, client, be.Info().URL, "bench-"+strconv.Itoa(i), obs, nil)
		if err != nil {
			return err
		}
		took(d)
	}
	return nil
}
