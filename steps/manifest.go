package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
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

// resources maps objects to their REST resources on one cluster; the
// discovery behind it is read once (a run's steps share it).
type resources struct {
	mapper *restmapper.DeferredDiscoveryRESTMapper
	dyn    *dynamic.DynamicClient
}

func newResources(cfg *rest.Config) (*resources, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &resources{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}, nil
}

// of returns the client of obj's resource, in its namespace.
func (r *resources) of(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		// A kind new since discovery was read (a CRD just applied).
		r.mapper.Reset()
		if mapping, err = r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, fmt.Errorf("find the resource of %s: %w", gvk.Kind, err)
		}
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		return r.dyn.Resource(mapping.Resource).Namespace(ns), nil
	}
	return r.dyn.Resource(mapping.Resource), nil
}

// resourceClient maps an object to its REST resource on the run's cluster.
func (sc *StepContext) resourceClient(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	if sc.run.resources == nil {
		res, err := newResources(sc.Backend.AdminConfig())
		if err != nil {
			return nil, err
		}
		sc.run.resources = res
	}
	return sc.run.resources.of(obj)
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
