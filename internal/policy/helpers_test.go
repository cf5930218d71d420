package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// loadPolicyFile reads a Policy manifest of either version; both share one
// schema.
func loadPolicyFile(t testing.TB, path string) *pacv2beta3.Policy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	p := &pacv2beta3.Policy{}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return p
}

// newPolicy returns a policy of generation 1 with the ID and code.
func newPolicy(id, code string) *pacv2beta3.Policy {
	return &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: id, Generation: 1},
		Spec: pacv2beta3.PolicySpec{
			Name:     "Policy " + id,
			Severity: pacv2beta3.SeverityMedium,
			Code:     code,
		},
	}
}

// alwaysViolates is a v1 module whose violation set has one element.
func alwaysViolates(pkg string) string {
	return fmt.Sprintf("package %s\n\nviolation contains {\"msg\": \"always\"} if true\n", pkg)
}

// jsonValue returns value as an apiextensions JSON value.
func jsonValue(t testing.TB, value any) *apiextensionsv1.JSON {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatalf("marshal %v: %v", value, err)
	}
	return &apiextensionsv1.JSON{Raw: data}
}

// deployment returns a Deployment with one container per name.
func deployment(namespace, name string, labels map[string]string, containers ...string) *unstructured.Unstructured {
	list := make([]any, 0, len(containers))
	for _, c := range containers {
		list = append(list, map[string]any{"name": c, "image": "registry.example/" + c + ":1.0"})
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": int64(3),
			"template": map[string]any{
				"spec": map[string]any{"containers": list},
			},
		},
	}}
	if namespace != "" {
		obj.SetNamespace(namespace)
	}
	if labels != nil {
		obj.SetLabels(labels)
	}
	return obj
}

func policySet(name string, mode Mode, filters pacv2beta2.PolicySetFilters) pacv2beta2.PolicySet {
	return pacv2beta2.PolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       pacv2beta2.PolicySetSpec{Mode: string(mode), Filters: filters},
	}
}
