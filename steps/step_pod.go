package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/anonlab/anonlab/steps/audit"
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
	// The kubelet's probes, as the audit log shows them, are why the Pod
	// turns NotReady: each distinct answer is reported once.
	var probes <-chan audit.Observation
	if sc.run.audit != nil {
		probes = sc.run.audit.C()
	}
	seen := map[string]bool{}
	var last cluster.PodStatus
	var lastErr error
	for {
		st, err := obs.APIServerPod(ctx)
		if err == nil {
			last, lastErr = st, nil
			if st.Ready == *p.Ready {
				p.drain(sc, probes, seen)
				if !st.Ready && probes != nil && !p.probeFailed(seen) {
					// The probe that fails comes up to ~20 s after the new
					// kube-apiserver serves: wait for it to show why.
					p.awaitProbe(ctx, sc, probes, seen)
				}
				sc.Check(CheckResult{Name: "kube-apiserver Pod ready", Want: fmt.Sprint(*p.Ready), Got: podSummary(st), OK: true})
				return nil
			}
		} else {
			lastErr = err
		}
		sc.progress(cluster.Progress{Phase: "wait", Detail: fmt.Sprintf("waiting for the kube-apiserver Pod to be ready=%v: %s (%s left)",
			*p.Ready, podSummary(last), (p.within - time.Since(start)).Round(time.Second)), Elapsed: time.Since(start)})
		if done := p.wait(ctx, sc, interval, &probes, seen); done {
			if parent.Err() != nil {
				return parent.Err()
			}
			got := podSummary(last)
			if lastErr != nil {
				got += " (last error: " + lastErr.Error() + ")"
			}
			sc.Check(CheckResult{Name: "kube-apiserver Pod ready", Want: fmt.Sprint(*p.Ready), Got: got, OK: false})
			return nil
		}
	}
}

// wait waits interval, reporting the kubelet's probes the audit log shows
// meanwhile; it returns true when ctx ended.
func (p *podStep) wait(ctx context.Context, sc *StepContext, interval time.Duration, probes *<-chan audit.Observation, seen map[string]bool) bool {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-timer.C:
			return false
		case o, ok := <-*probes:
			if !ok {
				*probes = nil
				continue
			}
			p.report(sc, o, seen)
		}
	}
}

// probeFailed reports whether a probe answered 401 or 403 was reported.
func (p *podStep) probeFailed(seen map[string]bool) bool {
	for key := range seen {
		if strings.HasSuffix(key, "401") || strings.HasSuffix(key, "403") {
			return true
		}
	}
	return false
}

// awaitProbe reports the kubelet's probes until one is refused, or ctx
// ends (the step's bound).
func (p *podStep) awaitProbe(ctx context.Context, sc *StepContext, probes <-chan audit.Observation, seen map[string]bool) {
	sc.Log("waiting for the kubelet's next probe in the audit log")
	for !p.probeFailed(seen) {
		select {
		case <-ctx.Done():
			sc.Log("no refused probe seen in the audit log in time")
			return
		case o, ok := <-probes:
			if !ok {
				return
			}
			p.report(sc, o, seen)
		}
	}
}

// drain reports the probes the audit log has shown and the step not read.
func (p *podStep) drain(sc *StepContext, probes <-chan audit.Observation, seen map[string]bool) {
	for {
		select {
		case o, ok := <-probes:
			if !ok {
				return
			}
			p.report(sc, o, seen)
		default:
			return
		}
	}
}

// report emits o when it is a kubelet probe with an answer not seen yet.
func (p *podStep) report(sc *StepContext, o audit.Observation, seen map[string]bool) {
	if key := fmt.Sprint(o.Path, o.Code); strings.HasPrefix(o.UserAgent, "kube-probe/") && !seen[key] {
		seen[key] = true
		sc.run.emit(Observed{Step: sc.Step.ID, User: o.User, Groups: o.Groups, Verb: o.Verb, Path: o.Path, Status: o.Code,
			Decision: o.Decision, Reason: o.AuthzReason, UserAgent: o.UserAgent, Matched: true,
			Explain: "the kubelet's probe: " + audit.ExplainIn(o, sc.Lang(), audit.SentCredentials(false))})
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
