package kind

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/anonlab/anonlab/internal/budget"
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
// kube-apiserver serves (split into the kubelet's part, until the new
// container runs, and kube-apiserver's, until it logs "Serving
// securely"), the whole create-edit-delete cycle, and the lab's part: how
// long after that log line the backend first got an answer from it; it
// fails when any run's lab part or observation is over its budget.
func BenchmarkKind(b *testing.B) {
	rt, image := RequireKind(b)
	ctx := context.Background()
	var create, edit, kubelet, apiserver, detect, slowestDetect, observe, slowestObserve, total time.Duration
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
		kubelet += s.Started.Sub(s.Edited)
		apiserver += serving.Sub(s.Started)
		detect += s.FirstAnswer.Sub(serving)
		slowestDetect = max(slowestDetect, s.FirstAnswer.Sub(serving))
		total += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(create.Seconds()/n, "create-s")
	b.ReportMetric(edit.Seconds()/n, "edit-to-serving-s")
	b.ReportMetric(kubelet.Seconds()/n, "kubelet-s")
	b.ReportMetric(apiserver.Seconds()/n, "apiserver-s")
	b.ReportMetric(float64(detect.Milliseconds())/n, "detect-ms")
	b.ReportMetric(total.Seconds()/n, "total-s")
	b.ReportMetric(float64(observe.Milliseconds())/n/observations, "observe-ms")
	budget.Check(b, "kind: lab's part of manifest edit → new apiserver answering (slowest)", float64(slowestDetect.Milliseconds()), float64(detectBudget.Milliseconds()), " ms",
		fmt.Sprintf("on average: the kubelet's part (edit → new container running) %.1fs, kube-apiserver's (→ \"Serving securely\") %.1fs, the lab's (→ its first answer) %.0f ms; %d run(s)",
			kubelet.Seconds()/n, apiserver.Seconds()/n, float64(detect.Milliseconds())/n, b.N))
	budget.Check(b, "kind: audit observation after the request (slowest)", float64(slowestObserve.Milliseconds()), float64(observeBudget.Milliseconds()), " ms",
		fmt.Sprintf("%d requests, %.0f ms on average", observations*b.N, float64(observe.Milliseconds())/n/observations))
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
