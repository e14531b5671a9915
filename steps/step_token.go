package steps

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
)

// tokenStep gets a bearer token for a ServiceAccount through the
// TokenRequest API (kubectl create token). Since Kubernetes 1.24 no token
// Secret is made for a ServiceAccount, so reading one no longer works.
//
//	serviceAccountToken: {namespace: default, serviceAccount: default, saveAs: sa-token}
type tokenStep struct {
	Namespace      string `yaml:"namespace"`
	ServiceAccount string `yaml:"serviceAccount"`
	SaveAs         string `yaml:"saveAs"`
}

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
	v.DefineToken(t.SaveAs)
	return nil
}

func (t *tokenStep) Run(ctx context.Context, sc *StepContext) error {
	cs, err := kubernetes.NewForConfig(sc.Backend.AdminConfig())
	if err != nil {
		return err
	}
	variable := tokenVariable(t.SaveAs)
	sc.Command(t.shellCommand())
	if err := t.ensureServiceAccount(ctx, sc); err != nil {
		return err
	}
	tr, err := cs.CoreV1().ServiceAccounts(t.Namespace).CreateToken(ctx, t.ServiceAccount, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("request a token for ServiceAccount %s/%s: %w", t.Namespace, t.ServiceAccount, err)
	}
	identity := t.identity()
	sc.run.tokens[t.SaveAs] = token{value: tr.Status.Token, identity: identity, variable: variable}
	sc.Log("got a token for %s, valid until %s; shown as $%s", identity, tr.Status.ExpirationTimestamp.UTC().Format("15:04:05 MST"), variable)
	return nil
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
	cs, err := kubernetes.NewForConfig(sc.Backend.AdminConfig())
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().ServiceAccounts(t.Namespace).Get(ctx, t.ServiceAccount, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return t.createServiceAccount(ctx, sc, cs)
	}
	return err
}

// createServiceAccount makes the ServiceAccount, as the controller would,
// recorded in the ledger like any object the lab applies.
func (t *tokenStep) createServiceAccount(ctx context.Context, sc *StepContext, cs kubernetes.Interface) error {
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
	made, err := cs.CoreV1().ServiceAccounts(t.Namespace).Create(ctx, sa, metav1.CreateOptions{FieldManager: "anonlab"})
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
