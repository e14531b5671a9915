package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/anonlab/anonlab/steps/cluster"
)

// podStep watches the kube-apiserver static Pod until its readiness is the
// one wanted: after --anonymous-auth=false the kubelet's readiness probe
// (an anonymous GET /readyz) gets 401 and the Pod turns NotReady. Backends
// without a kubelet skip it, saying so.
//
//	apiserverPod: {ready: false}
type podStep struct {
	Ready *bool `yaml:"ready"`
	// Within bounds the wait (default 2m).
	Within string `yaml:"within"`

	within time.Duration
}

func (p *podStep) Validate(v *Validator) error {
	if p.Ready == nil {
		return v.Errorf("ready", "required: true or false")
	}
	p.within = 2 * time.Minute
	if p.Within != "" {
		d, err := time.ParseDuration(p.Within)
		if err != nil || d <= 0 {
			return v.Errorf("within", "%q: a duration such as 90s", p.Within)
		}
		p.within = d
	}
	return nil
}

func (p *podStep) Run(ctx context.Context, sc *StepContext) error {
	obs, ok := sc.Backend.(cluster.APIServerPodObserver)
	if !ok {
		return Skip(fmt.Sprintf("the %s backend runs kube-apiserver without a kubelet, so no probe marks it NotReady; the requests above are the ones a kubelet's probes send", sc.Backend.Name()))
	}
	sc.Command("kubectl --namespace kube-system get pod --selector component=kube-apiserver --watch")
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.within)
	defer cancel()
	start := time.Now()
	interval := 250 * time.Millisecond
	var last cluster.PodStatus
	var lastErr error
	for {
		st, err := obs.APIServerPod(ctx)
		if err == nil {
			last, lastErr = st, nil
			if st.Ready == *p.Ready {
				sc.Check(CheckResult{Name: "kube-apiserver Pod ready", Want: fmt.Sprint(*p.Ready), Got: podSummary(st), OK: true})
				return nil
			}
		} else {
			lastErr = err
		}
		sc.progress(cluster.Progress{Phase: "wait", Detail: fmt.Sprintf("waiting for the kube-apiserver Pod to be ready=%v: %s (%s left)",
			*p.Ready, podSummary(last), (p.within - time.Since(start)).Round(time.Second)), Elapsed: time.Since(start)})
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			got := podSummary(last)
			if lastErr != nil {
				got += " (last error: " + lastErr.Error() + ")"
			}
			sc.Check(CheckResult{Name: "kube-apiserver Pod ready", Want: fmt.Sprint(*p.Ready), Got: got, OK: false})
			return nil
		case <-time.After(interval):
		}
	}
}

func podSummary(st cluster.PodStatus) string {
	if st.Name == "" {
		return "not seen yet"
	}
	ready := "0/1"
	if st.Ready {
		ready = "1/1"
	}
	return fmt.Sprintf("%s %s %s, restarts %d", st.Name, ready, st.Phase, st.Restarts)
}

func (p *podStep) handout(*Scenario, *Step) []string {
	return []string{"kubectl --namespace kube-system get pod --selector component=kube-apiserver"}
}
