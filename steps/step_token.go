package steps

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/anonlab/anonlab/steps/cluster/kube"
)

// tokenStep gets a bearer token for a ServiceAccount: from the token
// Secret kube-controller-manager made for it (the article's way, before
// Kubernetes 1.24), or through the TokenRequest API (kubectl create
// token): since 1.24 no token Secret is made any more.
//
//	serviceAccountToken: {namespace: default, serviceAccount: default, saveAs: sa-token, from: secret}
type tokenStep struct {
	Namespace      string `yaml:"namespace"`
	ServiceAccount string `yaml:"serviceAccount"`
	SaveAs         string `yaml:"saveAs"`
	// From is fromSecret or fromTokenRequest; empty: by version.
	From string `yaml:"from"`
}

// Where a token comes from.
const (
	fromSecret       = "secret"
	fromTokenRequest = "tokenRequest"
)

// secretTokens are the versions that make a token Secret for every
// ServiceAccount (LegacyServiceAccountTokenNoAutoGeneration is on from 1.24).
var secretTokens, _ = parseVersions("<1.24")

// source is where the token comes from on the Kubernetes version.
func (t *tokenStep) source(version string) string {
	switch {
	case t.From != "":
		return t.From
	case secretTokens.Holds(version):
		return fromSecret
	}
	return fromTokenRequest
}

// secretWait bounds how long the step waits for the token controller to
// make the Secret and fill in its token.
const secretWait = time.Minute

func (t *tokenStep) Validate(v *Validator) error {
	if t.Namespace == "" {
		t.Namespace = "default"
	}
	if t.ServiceAccount == "" {
		t.ServiceAccount = "default"
	}
	if t.SaveAs == "" {
		return v.Errorf("saveAs", "required: the name later request steps use as token")
	}
	if !validID.MatchString(t.SaveAs) {
		return v.Errorf("saveAs", "%q: use lower-case letters, digits and dashes", t.SaveAs)
	}
	if t.From != "" && t.From != fromSecret && t.From != fromTokenRequest {
		return v.Errorf("from", "%q: %s or %s (default: %s before Kubernetes 1.24, else %s)", t.From, fromSecret, fromTokenRequest, fromSecret, fromTokenRequest)
	}
	v.DefineToken(t.SaveAs)
	return nil
}

func (t *tokenStep) Run(ctx context.Context, sc *StepContext) error {
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err != nil {
		return err
	}
	variable := tokenVariable(t.SaveAs)
	from := t.source(sc.Backend.Info().KubernetesVersion)
	sc.Command(t.shellCommand(from))
	if err := t.ready(ctx, sc, from); err != nil {
		return err
	}
	identity := t.identity()
	if from == fromSecret {
		value, secret, err := t.secretToken(ctx, cs)
		if err != nil {
			return err
		}
		sc.run.tokens[t.SaveAs] = token{value: value, identity: identity, variable: variable}
		sc.Log("read the token of %s from its Secret %s/%s (made by kube-controller-manager); shown as $%s", identity, t.Namespace, secret, variable)
		return nil
	}
	tr, err := kube.CreateToken(ctx, cs, t.Namespace, t.ServiceAccount)
	if err != nil {
		return fmt.Errorf("request a token for ServiceAccount %s/%s: %w", t.Namespace, t.ServiceAccount, err)
	}
	sc.run.tokens[t.SaveAs] = token{value: tr.Status.Token, identity: identity, variable: variable}
	sc.Log("got a token for %s, valid until %s; shown as $%s", identity, tr.Status.ExpirationTimestamp.UTC().Format("15:04:05 MST"), variable)
	return nil
}

// ready makes sure the ServiceAccount exists, and for a token from its
// Secret waits until the token controller has made that: in hands-on mode
// the attendee's command must find it.
func (t *tokenStep) ready(ctx context.Context, sc *StepContext, from string) error {
	if from != fromSecret || t.ServiceAccount != "default" {
		if err := t.ensureServiceAccount(ctx, sc); err != nil {
			return err
		}
	}
	if from != fromSecret {
		return nil
	}
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err != nil {
		return err
	}
	// kube-controller-manager runs where token Secrets are made, and its
	// ServiceAccount controller makes every namespace's default.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, secretWait, true, func(ctx context.Context) (bool, error) {
		_, err := kube.Get[corev1.ServiceAccount](ctx, cs, kube.ServiceAccounts, t.Namespace, t.ServiceAccount)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("wait for kube-controller-manager to make ServiceAccount %s/%s: %w", t.Namespace, t.ServiceAccount, err)
	}
	_, _, err = t.secretToken(ctx, cs)
	return err
}

// secretToken waits until the ServiceAccount names its token Secret and
// the token controller has filled it in, and returns the token and the
// Secret's name, as the article's command reads them.
func (t *tokenStep) secretToken(ctx context.Context, cs *kube.Client) (value, secret string, err error) {
	last := "the ServiceAccount names no Secret"
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, secretWait, true, func(ctx context.Context) (bool, error) {
		sa, err := kube.Get[corev1.ServiceAccount](ctx, cs, kube.ServiceAccounts, t.Namespace, t.ServiceAccount)
		if err != nil || len(sa.Secrets) == 0 {
			return false, err
		}
		secret = sa.Secrets[0].Name
		s, err := kube.Get[corev1.Secret](ctx, cs, kube.Secrets, t.Namespace, secret)
		if apierrors.IsNotFound(err) {
			last = "its Secret " + secret + " does not exist yet"
			return false, nil
		}
		if err != nil {
			return false, err
		}
		value = string(s.Data[corev1.ServiceAccountTokenKey])
		last = "its Secret " + secret + " has no token yet"
		return value != "", nil
	})
	if err != nil {
		return "", "", fmt.Errorf("read the token of ServiceAccount %s/%s from its Secret (%s after %s): kube-controller-manager's token controller makes one only before Kubernetes 1.24; use from: %s: %w",
			t.Namespace, t.ServiceAccount, last, secretWait, fromTokenRequest, err)
	}
	return value, secret, nil
}

// identity is who the ServiceAccount's tokens authenticate as.
func (t *tokenStep) identity() string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", t.Namespace, t.ServiceAccount)
}

// ensureServiceAccount makes the ServiceAccount when it does not exist:
// without kube-controller-manager (the local backend) nobody creates a
// namespace's default ServiceAccount, so the lab does, as the controller
// would.
func (t *tokenStep) ensureServiceAccount(ctx context.Context, sc *StepContext) error {
	cs, err := kube.New(sc.Backend.AdminConfig())
	if err != nil {
		return err
	}
	_, err = kube.Get[corev1.ServiceAccount](ctx, cs, kube.ServiceAccounts, t.Namespace, t.ServiceAccount)
	if apierrors.IsNotFound(err) {
		return t.createServiceAccount(ctx, sc, cs)
	}
	return err
}

// createServiceAccount makes the ServiceAccount, as the controller would,
// recorded in the ledger like any object the lab applies.
func (t *tokenStep) createServiceAccount(ctx context.Context, sc *StepContext, cs *kube.Client) error {
	ref := fmt.Sprintf("ServiceAccount %s/%s", t.Namespace, t.ServiceAccount)
	if err := sc.mayWrite("create "+ref+", which does not exist", nil); err != nil {
		return err
	}
	sc.Log("%s does not exist yet (no controller made it): creating it", ref)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: t.ServiceAccount, Namespace: t.Namespace}}
	sa.APIVersion, sa.Kind = "v1", "ServiceAccount"
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("v1")
	obj.SetKind("ServiceAccount")
	obj.SetNamespace(t.Namespace)
	obj.SetName(t.ServiceAccount)
	if err := sc.run.record(recordOf(obj)); err != nil {
		return err
	}
	sc.run.stamp(obj)
	sa.Labels, sa.Annotations = obj.GetLabels(), obj.GetAnnotations()
	made, err := kube.Create(ctx, cs, kube.ServiceAccounts, t.Namespace, sa, metav1.CreateOptions{FieldManager: "anonlab"})
	if apierrors.IsAlreadyExists(err) {
		// The controller made it between the Get and the Create (kind,
		// right after the cluster came up): it is not the lab's.
		sc.Log("%s was made meanwhile by its controller: using that one", ref)
		return sc.run.forget(recordOf(obj))
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", ref, err)
	}
	obj.SetUID(made.UID)
	return sc.run.record(recordOf(obj))
}
