package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// objectKey names an object the run applied.
type objectKey struct {
	gvk       schema.GroupVersionKind
	namespace string
	name      string
}

func (k objectKey) String() string {
	if k.namespace != "" {
		return fmt.Sprintf("%s %s/%s", k.gvk.Kind, k.namespace, k.name)
	}
	return k.gvk.Kind + " " + k.name
}

type appliedObject struct{ obj *unstructured.Unstructured }

// manifestObjects decodes the objects of the named manifests, in order.
func manifestObjects(sc *Scenario, names []string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, name := range names {
		data, err := readManifest(sc, name)
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", name, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			err := dec.Decode(&obj.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", name, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if obj.GetKind() == "" || obj.GetName() == "" {
				return nil, fmt.Errorf("manifest %s: every object needs kind and metadata.name", name)
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

func keyOf(obj *unstructured.Unstructured) objectKey {
	return objectKey{gvk: obj.GroupVersionKind(), namespace: obj.GetNamespace(), name: obj.GetName()}
}

// opensToAnonymous reports whether obj binds a role to anonymous users.
func opensToAnonymous(obj *unstructured.Unstructured) bool {
	if obj.GetKind() != "ClusterRoleBinding" && obj.GetKind() != "RoleBinding" {
		return false
	}
	subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
	for _, s := range subjects {
		m, _ := s.(map[string]any)
		name, _ := m["name"].(string)
		if slices.Contains([]string{"system:anonymous", "system:unauthenticated"}, name) {
			return true
		}
	}
	return false
}

// resourceClient maps an object to its REST resource.
func (sc *StepContext) resourceClient(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	cfg := sc.Backend.AdminConfig()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("find the resource of %s: %w", gvk.Kind, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		return dyn.Resource(mapping.Resource).Namespace(ns), nil
	}
	return dyn.Resource(mapping.Resource), nil
}

// deleteObjects deletes objects, ignoring those already gone, and forgets
// them.
func (sc *StepContext) deleteObjects(ctx context.Context, objs map[objectKey]appliedObject) error {
	var errs []error
	// In a fixed order, so that the narration is the same on every run.
	for _, key := range slices.SortedFunc(maps.Keys(objs), func(a, b objectKey) int { return strings.Compare(a.String(), b.String()) }) {
		a := objs[key]
		rc, err := sc.resourceClient(a.obj)
		if err == nil {
			err = rc.Delete(ctx, a.obj.GetName(), metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", key, err))
			continue
		}
		sc.Log("deleted %s", key)
		delete(sc.run.applied, key)
	}
	return errors.Join(errs...)
}

func describeObjects(objs map[objectKey]appliedObject) string {
	var names []string
	for k := range objs {
		names = append(names, k.String())
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func validateManifests(v *Validator, names []string) error {
	if len(names) == 0 {
		return v.Errorf("manifests", "required: at least one manifest file")
	}
	for i, name := range names {
		if !v.ManifestExists(name) {
			return v.Errorf(fmt.Sprintf("manifests[%d]", i), "%q: no such manifest (embedded in manifests/, or beside the scenario file)", name)
		}
	}
	if _, err := manifestObjects(v.scenario, names); err != nil {
		return v.Errorf("manifests", "%v", err)
	}
	return nil
}
