package policy

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

func TestCheckParameterType(t *testing.T) {
	tests := []struct {
		typ     string
		value   any
		wantErr bool
	}{
		{typ: "string", value: "a"},
		{typ: "string", value: 1.0, wantErr: true},
		{typ: "integer", value: 3.0},
		{typ: "integer", value: int64(3)},
		{typ: "integer", value: 3.5, wantErr: true},
		{typ: "integer", value: "3", wantErr: true},
		{typ: "number", value: 3.5},
		{typ: "number", value: 3.0},
		{typ: "number", value: true, wantErr: true},
		{typ: "boolean", value: false},
		{typ: "boolean", value: "true", wantErr: true},
		{typ: "array", value: []any{"a", 1.0}},
		{typ: "array", value: map[string]any{}, wantErr: true},
		{typ: "object", value: map[string]any{"a": 1.0}},
		{typ: "object", value: []any{}, wantErr: true},
		{typ: "float", value: 1.0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+describeValue(tt.value), func(t *testing.T) {
			err := CheckParameterType(tt.typ, tt.value)
			if (err != nil) != tt.wantErr {
				t.Errorf("CheckParameterType(%q, %v) error = %v, want error %v", tt.typ, tt.value, err, tt.wantErr)
			}
		})
	}
}

func TestDecodeParameterValueNull(t *testing.T) {
	for _, raw := range []*apiextensionsv1.JSON{nil, {}, {Raw: []byte("null")}} {
		_, set, err := DecodeParameterValue(raw)
		if err != nil || set {
			t.Errorf("DecodeParameterValue(%v) = set %v, error %v, want no value", raw, set, err)
		}
	}
}

func TestDeclareParametersRejectsInvalidDefault(t *testing.T) {
	p := newPolicy("p", "")
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		{Name: "ok", Type: "string", Value: jsonValue(t, "x")},
		{Name: "replicas", Type: "integer", Value: jsonValue(t, 2.5)},
	}
	_, err := declareParameters(p)
	if err == nil {
		t.Fatal("declareParameters() error = nil, want an error for a non-integer default")
	}
	if !strings.Contains(err.Error(), `spec.parameters[1] "replicas"`) {
		t.Errorf("error = %q, want it to name spec.parameters[1] \"replicas\"", err)
	}
}

// configFor returns a PolicyConfig that sets values for the policy "p".
func configFor(t *testing.T, name string, match pacv2beta3.PolicyConfigTarget, values map[string]any) pacv2beta3.PolicyConfig {
	params := map[string]apiextensionsv1.JSON{}
	for k, v := range values {
		params[k] = *jsonValue(t, v)
	}
	return pacv2beta3.PolicyConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pacv2beta3.PolicyConfigSpec{
			Match:  match,
			Config: map[string]pacv2beta3.PolicyConfigConfig{"p": {Parameters: params}},
		},
	}
}

func TestMergeParametersPriority(t *testing.T) {
	p := newPolicy("p", "")
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		{Name: "a", Type: "string", Value: jsonValue(t, "default")},
		{Name: "b", Type: "string", Value: jsonValue(t, "default")},
		{Name: "c", Type: "string", Value: jsonValue(t, "default")},
		{Name: "d", Type: "string", Value: jsonValue(t, "default")},
		{Name: "e", Type: "string", Value: jsonValue(t, "default")},
	}
	declared, err := declareParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	withValue := func(v string, keys ...string) map[string]any {
		m := map[string]any{}
		for _, k := range keys {
			m[k] = v
		}
		return m
	}
	// Listed from the highest priority to the lowest so that the sort in
	// newConfigEntries is tested too.
	configs := newConfigEntries([]pacv2beta3.PolicyConfig{
		configFor(t, "by-resource", pacv2beta3.PolicyConfigTarget{
			Resources: []pacv2beta3.PolicyTargetResource{{Kind: "Deployment", Name: "web", Namespace: "apps"}},
		}, withValue("resource", "a")),
		configFor(t, "by-app", pacv2beta3.PolicyConfigTarget{
			Applications: []pacv2beta3.PolicyTargetApplication{{Kind: "Kustomization", Name: "web", Namespace: "flux-system"}},
		}, withValue("app", "a", "b")),
		configFor(t, "by-namespace", pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}},
			withValue("namespace", "a", "b", "c")),
		configFor(t, "by-workspace", pacv2beta3.PolicyConfigTarget{Workspaces: []string{"team-a"}},
			map[string]any{"a": "workspace", "b": "workspace", "c": "workspace", "d": "workspace", "undeclared": "x"}),
		configFor(t, "other-namespace", pacv2beta3.PolicyConfigTarget{Namespaces: []string{"other"}},
			withValue("other", "a", "b", "c", "d", "e")),
		configFor(t, "other-helm-release", pacv2beta3.PolicyConfigTarget{
			Applications: []pacv2beta3.PolicyTargetApplication{{Kind: "HelmRelease", Name: "web"}},
		}, withValue("helm", "e")),
	})
	subject := Subject{
		Object: deployment("apps", "web", map[string]string{
			KustomizationNameLabel:      "web",
			KustomizationNamespaceLabel: "flux-system",
		}, "app"),
		NamespaceLabels: map[string]string{TenantLabel: "team-a"},
	}

	got, err := mergeParameters("p", declared, configs, subject)
	if err != nil {
		t.Fatalf("mergeParameters() error = %v", err)
	}
	want := map[string]ParameterValue{
		"a": {Value: "resource", ConfigRef: "by-resource"},
		"b": {Value: "app", ConfigRef: "by-app"},
		"c": {Value: "namespace", ConfigRef: "by-namespace"},
		"d": {Value: "workspace", ConfigRef: "by-workspace"},
		"e": {Value: "default"},
	}
	if len(got) != len(want) {
		t.Errorf("mergeParameters() = %v, want %v", got, want)
	}
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("parameter %q = %+v, want %+v", name, g, w)
		}
	}
}

func TestMergeParametersHelmRelease(t *testing.T) {
	p := newPolicy("p", "")
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "a", Type: "integer", Value: jsonValue(t, 1)}}
	declared, err := declareParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	configs := newConfigEntries([]pacv2beta3.PolicyConfig{
		configFor(t, "helm", pacv2beta3.PolicyConfigTarget{
			Applications: []pacv2beta3.PolicyTargetApplication{{Kind: "HelmRelease", Name: "web", Namespace: "apps"}},
		}, map[string]any{"a": 5}),
	})
	subject := Subject{Object: deployment("apps", "web", map[string]string{
		HelmReleaseNameLabel:      "web",
		HelmReleaseNamespaceLabel: "apps",
	}, "app")}

	got, err := mergeParameters("p", declared, configs, subject)
	if err != nil {
		t.Fatalf("mergeParameters() error = %v", err)
	}
	if want := (ParameterValue{Value: 5.0, ConfigRef: "helm"}); got["a"] != want {
		t.Errorf("parameter a = %+v, want %+v", got["a"], want)
	}

	// The same object managed by a Kustomization of that name does not match.
	subject.Object.SetLabels(map[string]string{KustomizationNameLabel: "web", KustomizationNamespaceLabel: "apps"})
	got, err = mergeParameters("p", declared, configs, subject)
	if err != nil {
		t.Fatalf("mergeParameters() error = %v", err)
	}
	if want := (ParameterValue{Value: 1.0}); got["a"] != want {
		t.Errorf("parameter a = %+v, want the default %+v", got["a"], want)
	}
}

func TestMergeParametersErrors(t *testing.T) {
	p := newPolicy("p", "")
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		{Name: "limit", Type: "integer", Value: jsonValue(t, 1)},
		{Name: "registry", Type: "string", Required: true},
	}
	declared, err := declareParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	subject := Subject{Object: deployment("apps", "web", nil, "app")}
	byNamespace := pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}}

	tests := []struct {
		name    string
		configs []pacv2beta3.PolicyConfig
		wantErr string
	}{
		{
			name:    "required parameter without value",
			wantErr: `required parameter "registry" has no value`,
		},
		{
			name: "required parameter set elsewhere only",
			configs: []pacv2beta3.PolicyConfig{configFor(t, "other", pacv2beta3.PolicyConfigTarget{Namespaces: []string{"other"}},
				map[string]any{"registry": "r"})},
			wantErr: `required parameter "registry" has no value`,
		},
		{
			name:    "wrong type from config",
			configs: []pacv2beta3.PolicyConfig{configFor(t, "bad", byNamespace, map[string]any{"registry": "r", "limit": "ten"})},
			wantErr: `parameter "limit" from PolicyConfig bad: value "ten" is not of type integer`,
		},
		{
			name:    "fractional number for integer",
			configs: []pacv2beta3.PolicyConfig{configFor(t, "bad", byNamespace, map[string]any{"registry": "r", "limit": 1.5})},
			wantErr: `value 1.5 is not of type integer`,
		},
		{
			name:    "required parameter from config",
			configs: []pacv2beta3.PolicyConfig{configFor(t, "good", byNamespace, map[string]any{"registry": "r", "limit": 10.0})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params, err := mergeParameters("p", declared, newConfigEntries(tt.configs), subject)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("mergeParameters() error = %v", err)
				}
				if params["registry"].Value != "r" {
					t.Errorf("registry = %v, want r", params["registry"])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("mergeParameters() error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnsatisfiedRequired(t *testing.T) {
	p := newPolicy("p", "")
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		{Name: "with_default", Type: "string", Required: true, Value: jsonValue(t, "x")},
		{Name: "from_config", Type: "string", Required: true},
		{Name: "missing", Type: "string", Required: true},
		{Name: "optional", Type: "string"},
	}
	declared, err := declareParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	configs := newConfigEntries([]pacv2beta3.PolicyConfig{
		configFor(t, "c", pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}}, map[string]any{"from_config": "y"}),
	})
	got := unsatisfiedRequired("p", declared, configs)
	if len(got) != 1 || got[0] != "missing" {
		t.Errorf("unsatisfiedRequired() = %v, want [missing]", got)
	}
}
