package tenancy

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ToUnstructured converts a generated object into an apply configuration:
// its fields without metadata.creationTimestamp, status and empty objects
// directly under spec (such as a Policy's spec.exclude), which a typed object
// always carries but Generate never sets. Applying them would make the field
// manager claim them.
func ToUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s %s to unstructured: %w", kindOf(obj), client.ObjectKeyFromObject(obj), err)
	}
	u := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	if spec, ok := u.Object["spec"].(map[string]any); ok {
		for key, value := range spec {
			if nested, isMap := value.(map[string]any); isMap && len(nested) == 0 {
				delete(spec, key)
			}
		}
		if len(spec) == 0 {
			delete(u.Object, "spec")
		}
	}
	return u, nil
}

// Manifests renders objects as a YAML stream, one document per object, in
// the order given.
func Manifests(objects []client.Object) ([]byte, error) {
	var out bytes.Buffer
	for i, obj := range objects {
		u, err := ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("render %s %s as YAML: %w", kindOf(obj), client.ObjectKeyFromObject(obj), err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}
