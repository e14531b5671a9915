package steps

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster"
	"github.com/anonlab/anonlab/steps/cluster/ledger"
)

// Ownership is a recorded fact (docs/architecture.md, Safety): every object
// the engine applies is written into the run's ledger entry before the
// apply, with its UID once the apply answers, and the engine deletes only
// what a recorded lab run applied, never an object that merely has the
// name of one of its manifests.

// managedBy labels every object the lab applies, for people reading the
// cluster; ownership itself is the ledger's record.
const managedByLabel = "app.kubernetes.io/managed-by"

// entry is the run's ledger entry: the backend's (saved to the state
// directory), or one kept in memory for a backend that records nothing.
func (r *runner) entry() *ledger.Entry {
	if rec, ok := r.backend.(cluster.Recorder); ok && rec.Entry() != nil {
		return rec.Entry()
	}
	if r.memEntry == nil {
		r.memEntry = &ledger.Entry{ID: "anonlab-run"}
	}
	return r.memEntry
}

// saveEntry writes the run's entry where `anonlab cleanup` finds it.
func (r *runner) saveEntry() error {
	if e := r.entry(); e != r.memEntry {
		if err := e.Save(); err != nil {
			return fmt.Errorf("record in the lab's ledger: %w", err)
		}
	}
	return nil
}

func recordOf(obj *unstructured.Unstructured) ledger.Object {
	return ledger.Object{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID())}
}

func (r *runner) record(o ledger.Object) error {
	r.entry().Record(o)
	return r.saveEntry()
}

func (r *runner) forget(o ledger.Object) error {
	r.entry().Forget(o)
	return r.saveEntry()
}

// owns reports whether this run or a recorded lab run applied live.
func (r *runner) owns(live *unstructured.Unstructured) bool {
	o, run := recordOf(live), live.GetAnnotations()[ledger.RunAnnotation]
	if r.entry().Owns(o, run) {
		return true
	}
	id := r.backend.Info().Identity
	return ledger.Owned(id.CAFingerprint, id.KubeSystemUID, o, run)
}

// stamp marks obj as the lab's, for people reading the cluster and for an
// apply that never answered.
func (r *runner) stamp(obj *unstructured.Unstructured) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[managedByLabel] = "anonlab"
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ledger.RunAnnotation] = r.entry().ID
	obj.SetAnnotations(ann)
}

// deleteOwned deletes the objects a lab run applied, each only if it is
// still the very object that was applied (a UID precondition), and leaves
// any other object of the same name alone, saying so.
func (sc *StepContext) deleteOwned(ctx context.Context, objs []*unstructured.Unstructured) error {
	var errs []error
	for _, obj := range objs {
		gone, err := deleteIfOwned(ctx, sc.resourceClient, obj, sc.run.owns, sc.Log)
		if err == nil && gone {
			err = sc.run.forget(recordOf(obj))
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deleteIfOwned deletes obj when owned says the live object is the lab's,
// and reports whether it is gone.
func deleteIfOwned(ctx context.Context, client func(*unstructured.Unstructured) (dynamic.ResourceInterface, error), obj *unstructured.Unstructured,
	owned func(*unstructured.Unstructured) bool, logf func(string, ...any)) (bool, error) {
	key := keyOf(obj)
	rc, err := client(obj)
	if err != nil {
		return false, err
	}
	live, err := rc.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		logf("%s is already gone", key)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", key, err)
	case !owned(live):
		logf("left alone: %s exists, but no lab run applied it (it is not the lab's to delete)", key)
		return false, nil
	}
	uid := live.GetUID()
	err = rc.Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("delete %s: %w", key, err)
	}
	logf("deleted %s", key)
	return true, nil
}

// Revoke deletes what a run recorded in its ledger entry e, on the cluster
// cfg reaches, after checking that cfg reaches the cluster e names (its
// Identity); `anonlab cleanup` calls it for a run that could not.
func Revoke(ctx context.Context, cfg *rest.Config, e *ledger.Entry, logf func(string, ...any)) error {
	id, err := cluster.ReadIdentity(ctx, cfg)
	if err != nil {
		return err
	}
	if !e.Identifies(id.CAFingerprint, id.KubeSystemUID) {
		return fmt.Errorf("%s now reaches another cluster than the run recorded (CA or kube-system UID differ): nothing deleted", cfg.Host)
	}
	res, err := newResources(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, obj := range objectsOf(e.Objects) {
		owned := func(live *unstructured.Unstructured) bool {
			return e.Owns(recordOf(live), live.GetAnnotations()[ledger.RunAnnotation])
		}
		gone, err := deleteIfOwned(ctx, res.of, obj, owned, logf)
		if err == nil && gone {
			e.Forget(recordOf(obj))
			err = e.Save()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// recordedObjects are the objects of the run's entry, for deleteOwned.
func (r *runner) recordedObjects() []*unstructured.Unstructured {
	return objectsOf(r.entry().Objects)
}

func objectsOf(records []ledger.Object) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range records {
		obj := &unstructured.Unstructured{}
		obj.SetAPIVersion(o.APIVersion)
		obj.SetKind(o.Kind)
		obj.SetNamespace(o.Namespace)
		obj.SetName(o.Name)
		obj.SetUID(types.UID(o.UID))
		out = append(out, obj)
	}
	return out
}
