package steps

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/anonlab/anonlab/steps/audit"
	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/kube"
)

// Hands-on mode: the attendee does each step the lab would do, typing the
// command it shows; the lab verifies the step by what it observes (the
// audit log, the cluster's objects, the apiserver that serves), never by
// what was typed (docs/architecture.md, Hands-on mode).

// Attendee commands, sent while the lab waits for a step (the TUI's keys).
const (
	// Recheck verifies the step again now (Enter).
	Recheck = iota + 1
	// Solve lets the lab do the step itself (s).
	Solve
	// RestoreManifest puts kube-apiserver's original manifest back, when an
	// edit keeps it from starting (b); the step stays the attendee's.
	RestoreManifest
)

// WithHandsOn makes the attendee do the steps an attendee can do; cmds
// carries their Recheck and Solve (nil: none). Each step fails when not
// done within timeout.
func WithHandsOn(cmds <-chan int, timeout time.Duration) Option {
	return func(o *options) { o.handsOn, o.attendee, o.stepTimeout = true, cmds, timeout }
}

// Waiting says the lab waits for the attendee to do a step.
type Waiting struct {
	Step string `json:"step"`
	// Command is what does the step, in terms of the variables `anonlab
	// env` exports.
	Command string `json:"command"`
}

// Observed is a request the lab saw in the audit log and attributes to the
// step the attendee is doing.
type Observed struct {
	Step      string   `json:"step"`
	User      string   `json:"user"`
	Groups    []string `json:"groups"`
	Verb      string   `json:"verb"`
	Path      string   `json:"path"`
	Status    int      `json:"status"`
	Decision  string   `json:"decision"`
	Reason    string   `json:"reason"`
	UserAgent string   `json:"userAgent"`
	// Matched is whether the request does the step.
	Matched bool `json:"matched"`
	// Why says, when it does not, what the step wants instead.
	Why string `json:"why,omitempty"`
	// Explain says why the request got its status.
	Explain string `json:"explain"`
}

// DoneByLab says the attendee let the lab do a step.
type DoneByLab struct {
	Step string `json:"step"`
}

func (Waiting) EventName() string   { return "waiting" }
func (Observed) EventName() string  { return "observed" }
func (DoneByLab) EventName() string { return "doneByLab" }

// handsOnStep is implemented by the step kinds an attendee does.
type handsOnStep interface {
	// solution is the command that does the step.
	solution(sc *StepContext) (string, error)
	// verify says whether the step is done: from o, a request seen in the
	// audit log, or from the cluster's state when o is nil.
	verify(ctx context.Context, sc *StepContext, o *audit.Observation) (verdict, error)
}

// verdict is what one check of a hands-on step found.
type verdict struct {
	done bool
	// seen: o is about this step (reported as an Observed event).
	seen bool
	// why the step is not done yet, when there is something to say.
	why string
}

// byState is implemented by hands-on kinds verified on the cluster's
// state rather than on one request: they are checked on every write the
// audit log shows, and every second.
type byState interface{ checksState() }

func (*applyStep) checksState()  {}
func (*deleteStep) checksState() {}
func (*flagsStep) checksState()  {}

// attendeeDoes reports whether, in hands-on mode, the attendee does st.
func (r *runner) attendeeDoes(st *Step, cleanup bool) (handsOnStep, bool) {
	if !r.opts.handsOn || cleanup {
		return nil, false
	}
	h, ok := st.Action.(handsOnStep)
	e := st.ExpectFor(r.backend.Info().KubernetesVersion)
	if f, isFlags := st.Action.(*flagsStep); isFlags && (f.Restore || e != nil && e.RolledBack) {
		return nil, false // breaking or restoring kube-apiserver is the lab's part
	}
	return h, ok
}

// handsOn waits until the attendee has done the step, or lets the lab do it
// when asked.
func (r *runner) handsOn(ctx context.Context, sc *StepContext, h handsOnStep) error {
	if p, ok := h.(interface {
		prepare(context.Context, *StepContext) error
	}); ok {
		if err := p.prepare(ctx, sc); err != nil {
			return err
		}
	}
	cmd, err := h.solution(sc)
	if err != nil {
		return err
	}
	r.undone(ctx, sc)
	r.emit(Waiting{Step: sc.Step.ID, Command: cmd})
	timeout := time.NewTimer(r.opts.stepTimeout)
	defer timeout.Stop()
	var tick <-chan time.Time
	if _, ok := h.(byState); ok {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	var obs <-chan audit.Observation
	if r.audit != nil {
		obs = r.audit.C()
	}
	lastWhy := ""
	check := func(o *audit.Observation) (bool, error) {
		v, err := h.verify(ctx, sc, o)
		if err != nil {
			return false, err
		}
		if o != nil && v.seen {
			// Whether the attendee sent credentials, a 401's record does not
			// say: only a request that did the anonymous step sent none.
			var opts []audit.ExplainOption
			if q, ok := h.(*requestStep); ok && v.done && q.As == "anonymous" {
				opts = append(opts, audit.SentCredentials(false))
			}
			r.emit(Observed{Step: sc.Step.ID, User: o.User, Groups: o.Groups, Verb: o.Verb, Path: o.Path, Status: o.Code,
				Decision: o.Decision, Reason: o.AuthzReason, UserAgent: o.UserAgent, Matched: v.done, Why: v.why,
				Explain: audit.ExplainIn(*o, sc.Lang(), opts...)})
		} else if v.why != "" && v.why != lastWhy {
			sc.Log("%s", v.why)
		}
		lastWhy = v.why
		return v.done, nil
	}
	if _, ok := h.(byState); ok {
		if done, err := check(nil); done || err != nil {
			return err
		}
	}
	for {
		var done bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("not done within %s (--step-timeout); the command that does it: %s", r.opts.stepTimeout, cmd)
		case o, ok := <-obs:
			if !ok {
				obs = nil
				continue
			}
			if strings.HasPrefix(o.UserAgent, "anonlab/") {
				continue // the lab's own requests
			}
			if _, ok := h.(byState); ok {
				// Objects are read again on each write the log shows; the
				// serving kube-apiserver only on the tick (reading it runs
				// commands in a kind node).
				if _, flags := h.(*flagsStep); flags || !writes(o) {
					continue
				}
				done, err = check(nil)
			} else {
				done, err = check(&o)
			}
		case <-tick:
			done, err = check(nil)
		case c := <-r.opts.attendee:
			switch c {
			case Recheck:
				done, err = check(nil)
			case Solve:
				sc.Log("the lab does this step for you")
				r.emit(DoneByLab{Step: sc.Step.ID})
				return r.action(ctx, sc)
			case RestoreManifest:
				if rc, ok := sc.Backend.(cluster.APIServerReconfigurer); ok {
					sc.Log("putting kube-apiserver's original manifest back")
					if err := rc.RestoreAPIServer(ctx); err != nil {
						sc.Log("could not put the original manifest back: %v", err)
					}
				}
				done, err = check(nil)
			}
		}
		if done || err != nil {
			return err
		}
	}
}

// undone checks that the earlier steps the attendee did still hold (the
// objects they applied are there, the ones they deleted are gone): a step
// undone since, by hand, is why a later one cannot pass. It says so in the
// step's log and returns the sentence ("" when all hold).
func (r *runner) undone(ctx context.Context, sc *StepContext) string {
	var out []string
	for i, st := range r.scenario.Steps {
		if st == sc.Step {
			break
		}
		if r.results[stepKey{false, i}] != Passed {
			continue
		}
		var missing []string
		var err error
		switch a := st.Action.(type) {
		case *applyStep:
			missing, _, err = sc.presence(ctx, a.Manifests, true)
		case *deleteStep:
			missing, _, err = sc.presence(ctx, a.Manifests, false)
		default:
			continue
		}
		if err == nil && len(missing) > 0 {
			out = append(out, fmt.Sprintf("step %q was undone since it passed (%s)", st.ID, strings.Join(missing, ", ")))
		}
	}
	if len(out) == 0 {
		return ""
	}
	s := strings.Join(out, "; ")
	sc.Log("%s", s)
	return s
}

// presence reads the manifests' objects from the cluster: wantThere lists
// those missing ("not there: X") or, when false, those still there.
func (sc *StepContext) presence(ctx context.Context, manifests []string, wantThere bool) (wrong []string, live []*unstructured.Unstructured, err error) {
	objs, err := manifestObjects(sc.run.scenario, manifests)
	if err != nil {
		return nil, nil, err
	}
	for _, obj := range objs {
		got, err := sc.getLive(ctx, obj)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case got == nil && wantThere:
			wrong = append(wrong, "not there: "+keyOf(obj).String())
		case got != nil && !wantThere:
			wrong = append(wrong, "still there: "+keyOf(obj).String())
		case got != nil:
			live = append(live, got)
		}
	}
	return wrong, live, nil
}

// writes reports whether o changed something the state checks read.
func writes(o audit.Observation) bool {
	return slices.Contains([]string{"create", "update", "patch", "delete", "deletecollection"}, o.Verb)
}

// request steps: the attendee's request, seen in the audit log.

func (q *requestStep) solution(*StepContext) (string, error) { return q.shellCommand(), nil }

func (q *requestStep) verify(ctx context.Context, sc *StepContext, o *audit.Observation) (verdict, error) {
	if o == nil || o.Path != strings.SplitN(q.Path, "?", 2)[0] || !methodVerb(q.Method, o.Verb) {
		return verdict{}, nil
	}
	want, who := q.wantUser(sc)
	if want != "" && o.User != want && (q.As != "anonymous" || o.User != "") {
		got := o.User
		if got == "" {
			got = "a request kube-apiserver could not authenticate"
		}
		return verdict{seen: true, why: fmt.Sprintf("that request came from %s (%d); this step is about %s", got, o.Code, who)}, nil
	}
	e := sc.expect()
	if e != nil && e.Status != 0 && o.Code != e.Status {
		why := fmt.Sprintf("that request got %d, the step expects %d: %s", o.Code, e.Status, sc.run.hint(sc.Step))
		if u := sc.run.undone(ctx, sc); u != "" {
			why = u + "; " + why
		}
		return verdict{seen: true, why: why}, nil
	}
	sc.response = &Response{Status: o.Code, Reason: o.StatusReason, Message: o.Message}
	// An older kube-apiserver's audit record (v1.20.2's) has no Status
	// reason or message.
	unlogged := e != nil && (e.Reason != "" && o.StatusReason == "" || (e.Message != "" || e.MessageContains != "") && o.Message == "")
	if e != nil && len(e.JSONPath) > 0 || unlogged {
		// The audit log holds no bodies: the lab sends the same request to
		// read the one the expectations look at.
		if err := q.Run(ctx, sc); err != nil {
			return verdict{}, err
		}
	}
	return verdict{done: true, seen: true}, nil
}

// wantUser is who kube-apiserver must see for the step, and how to say it.
func (q *requestStep) wantUser(sc *StepContext) (user, who string) {
	switch {
	case q.Token != "":
		id := sc.run.tokens[q.Token].identity
		return id, id + " (with $" + tokenVariable(q.Token) + ")"
	case q.As == "admin":
		return sc.Backend.Info().AdminName, "the admin (kubectl)"
	}
	return "system:anonymous", "a request with no credentials (system:anonymous)"
}

func methodVerb(method, verb string) bool {
	if method == http.MethodHead {
		return verb == "head" || verb == "get"
	}
	return verb == "get" || verb == "list"
}

// hint is the step's first hint, or "".
func (r *runner) hint(st *Step) string {
	if len(st.Hints) == 0 {
		return "press h for a hint"
	}
	return strings.TrimSpace(st.Hints[0].In(r.opts.lang))
}

// serviceAccountToken steps: the attendee's TokenRequest, or their read of
// the ServiceAccount's token Secret, seen in the audit log. The lab never
// needs the token itself.

func (t *tokenStep) solution(sc *StepContext) (string, error) {
	return t.shellCommand(t.source(sc.Backend.Info().KubernetesVersion)), nil
}

// prepare makes the ServiceAccount when nobody has (no controller on the
// local backend), as the demo does; where the token comes from a Secret,
// it waits until the token controller has made that.
func (t *tokenStep) prepare(ctx context.Context, sc *StepContext) error {
	return t.ready(ctx, sc, t.source(sc.Backend.Info().KubernetesVersion))
}

func (t *tokenStep) verify(ctx context.Context, sc *StepContext, o *audit.Observation) (verdict, error) {
	if t.source(sc.Backend.Info().KubernetesVersion) == fromSecret {
		return t.verifySecret(ctx, sc, o)
	}
	if o == nil || o.Resource != "serviceaccounts" || o.Subresource != "token" || o.Verb != "create" {
		return verdict{}, nil
	}
	if o.Namespace != t.Namespace || o.Name != t.ServiceAccount {
		return verdict{seen: true, why: fmt.Sprintf("that was a token for ServiceAccount %s/%s; this step wants one for %s/%s", o.Namespace, o.Name, t.Namespace, t.ServiceAccount)}, nil
	}
	if o.Code != http.StatusCreated {
		return verdict{seen: true, why: fmt.Sprintf("the TokenRequest got %d: %s", o.Code, o.Message)}, nil
	}
	sc.run.tokens[t.SaveAs] = token{identity: t.identity(), variable: tokenVariable(t.SaveAs), step: t}
	return verdict{done: true, seen: true}, nil
}

// verifySecret takes a successful GET of the ServiceAccount's token Secret
// for the attendee's reading of the token.
func (t *tokenStep) verifySecret(ctx context.Context, sc *StepContext, o *audit.Observation) (verdict, error) {
	if o == nil || o.Resource != "secrets" || o.Verb != "get" || o.Subresource != "" {
		return verdict{}, nil
	}
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err != nil {
		return verdict{}, err
	}
	sa, err := kube.Get[corev1.ServiceAccount](ctx, cs, kube.ServiceAccounts, t.Namespace, t.ServiceAccount)
	if err != nil {
		return verdict{}, err
	}
	if len(sa.Secrets) == 0 || o.Namespace != t.Namespace || o.Name != sa.Secrets[0].Name {
		return verdict{seen: true, why: fmt.Sprintf("that was Secret %s/%s; this step wants the token Secret of ServiceAccount %s/%s", o.Namespace, o.Name, t.Namespace, t.ServiceAccount)}, nil
	}
	if o.Code != http.StatusOK {
		return verdict{seen: true, why: fmt.Sprintf("reading the Secret got %d: %s", o.Code, o.Message)}, nil
	}
	sc.run.tokens[t.SaveAs] = token{identity: t.identity(), variable: tokenVariable(t.SaveAs), step: t}
	return verdict{done: true, seen: true}, nil
}

// apply and delete steps: the objects are there (or gone); what an
// attendee applies from $MANIFESTS carries the run's annotation and is
// recorded as the run's, so cleanup deletes it.

func (a *applyStep) solution(*StepContext) (string, error) { return a.shellCommand(), nil }

func (a *applyStep) prepare(ctx context.Context, sc *StepContext) error {
	objs, err := manifestObjects(sc.run.scenario, a.Manifests)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := sc.run.record(recordOf(obj)); err != nil {
			return err
		}
	}
	sc.run.handsOnBefore = sc.anonymousAccess(ctx, accessAttrs(objs))
	return nil
}

func (a *applyStep) verify(ctx context.Context, sc *StepContext, _ *audit.Observation) (verdict, error) {
	missing, live, err := sc.presence(ctx, a.Manifests, true)
	if err != nil || len(missing) > 0 {
		return verdict{why: strings.Join(missing, ", ")}, err
	}
	for _, obj := range live {
		if err := sc.run.record(recordOf(obj)); err != nil {
			return verdict{}, err
		}
	}
	objs, err := manifestObjects(sc.run.scenario, a.Manifests)
	if err != nil {
		return verdict{}, err
	}
	sc.recordOpened(sc.run.handsOnBefore, sc.anonymousAccess(ctx, accessAttrs(objs)))
	return verdict{done: true}, nil
}

func (d *deleteStep) solution(*StepContext) (string, error) { return d.shellCommand(), nil }

func (d *deleteStep) verify(ctx context.Context, sc *StepContext, _ *audit.Observation) (verdict, error) {
	left, _, err := sc.presence(ctx, d.Manifests, false)
	if err != nil || len(left) > 0 {
		return verdict{why: strings.Join(left, ", ")}, err
	}
	objs, err := manifestObjects(sc.run.scenario, d.Manifests)
	if err != nil {
		return verdict{}, err
	}
	for _, obj := range objs {
		if err := sc.run.forget(recordOf(obj)); err != nil {
			return verdict{}, err
		}
	}
	return verdict{done: true}, nil
}

// getLive reads obj from the cluster; nil when it does not exist.
func (sc *StepContext) getLive(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	rc, err := sc.resourceClient(obj)
	if err != nil {
		return nil, err
	}
	live, err := rc.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", keyOf(obj), err)
	}
	return live, nil
}

// apiserverFlags steps: the attendee edits the static-Pod manifest; the
// step is done once a kube-apiserver started from it serves with the flags.

func (f *flagsStep) solution(sc *StepContext) (string, error) {
	d, ok := sc.Backend.(cluster.ChangeDescriber)
	if !ok {
		return "", fmt.Errorf("the %s backend cannot say how to change kube-apiserver's flags by hand", sc.Backend.Name())
	}
	change, err := f.change(sc)
	if err != nil {
		return "", err
	}
	return d.DescribeChange(change), nil
}

func (f *flagsStep) prepare(context.Context, *StepContext) error { return nil }

func (f *flagsStep) verify(ctx context.Context, sc *StepContext, _ *audit.Observation) (verdict, error) {
	sr, ok := sc.Backend.(cluster.ServingAPIServerReader)
	if !ok {
		return verdict{}, fmt.Errorf("the %s backend cannot tell which kube-apiserver serves", sc.Backend.Name())
	}
	// The attendee may edit at any time: from now on the safety net puts
	// the original flags back.
	sc.run.flagsChanged = true
	args, startErr, err := sr.ServingAPIServer(ctx)
	switch {
	case err != nil:
		return verdict{why: "cannot tell which kube-apiserver serves: " + err.Error()}, nil
	case args == nil && startErr != "":
		return verdict{why: "kube-apiserver did not start from the manifest; it said: " + startErr + " (fix the manifest, or put the backup back)"}, nil
	case args == nil:
		return verdict{why: "waiting for kube-apiserver to serve"}, nil
	}
	if missing := f.missing(args); len(missing) > 0 {
		return verdict{why: "kube-apiserver serves without " + strings.Join(missing, ", ")}, nil
	}
	sc.clusterState(args, true)
	return verdict{done: true}, nil
}

// missing lists what args lacks of the change: a flag to set (a file given
// as $(FILES)/name may sit anywhere the attendee put it) or one to remove
// that is still there.
func (f *flagsStep) missing(args []string) []string {
	var out []string
	for _, want := range f.Set {
		ok := slices.ContainsFunc(args, func(a string) bool {
			if prefix, file, found := strings.Cut(want, cluster.FilesDirPlaceholder); found {
				return strings.HasPrefix(a, prefix) && strings.HasSuffix(a, file)
			}
			return a == want
		})
		if !ok {
			out = append(out, want)
		}
	}
	for _, name := range f.Remove {
		if slices.ContainsFunc(args, func(a string) bool { return cluster.FlagName(a) == name }) {
			out = append(out, "no "+name)
		}
	}
	return out
}
