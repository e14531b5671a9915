package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/anonlab/anonlab/steps/cluster/kube"
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
// discovery behind it is read once per group version (a run's steps share
// it).
type resources struct {
	kube *kube.Client
}

func newResources(cfg *rest.Config) (*resources, error) {
	c, err := kube.New(cfg)
	if err != nil {
		return nil, err
	}
	return &resources{kube: c}, nil
}

// of returns the client of obj's resource, in its namespace. Discovery is
// not bounded by a step's context, as client-go's discovery client was not.
func (r *resources) of(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	gvr, namespaced, err := r.kube.Mapping(context.Background(), gvk)
	if err != nil {
		return nil, fmt.Errorf("find the resource of %s: %w", gvk.Kind, err)
	}
	if namespaced {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		return r.kube.Dynamic().Resource(gvr).Namespace(ns), nil
	}
	return r.kube.Dynamic().Resource(gvr), nil
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
