package pac

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// listReader is a client.Reader whose List returns fixed PolicyConfigs.
type listReader struct {
	client.Reader
	configs []pacv2beta3.PolicyConfig
}

func (r listReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	list.(*pacv2beta3.PolicyConfigList).Items = r.configs
	return nil
}

func config(name string, match pacv2beta3.PolicyConfigTarget, params map[string][]string) pacv2beta3.PolicyConfig {
	cfg := pacv2beta3.PolicyConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: "pac.weave.works/v2beta3", Kind: "PolicyConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       pacv2beta3.PolicyConfigSpec{Match: match, Config: map[string]pacv2beta3.PolicyConfigConfig{}},
	}
	for policyID, names := range params {
		values := map[string]apiextensionsv1.JSON{}
		for _, n := range names {
			values[n] = apiextensionsv1.JSON{Raw: []byte("1")}
		}
		cfg.Spec.Config[policyID] = pacv2beta3.PolicyConfigConfig{Parameters: values}
	}
	return cfg
}

func configRequest(t *testing.T, version string, cfg pacv2beta3.PolicyConfig) admission.Request {
	t.Helper()
	cfg.APIVersion = "pac.weave.works/" + version
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Group: "pac.weave.works", Version: version, Kind: "PolicyConfig"},
		Name:      cfg.Name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: data},
	}}
}

func TestPolicyConfigValidator(t *testing.T) {
	namespaces := func(ns ...string) pacv2beta3.PolicyConfigTarget {
		return pacv2beta3.PolicyConfigTarget{Namespaces: ns}
	}
	apps := func(list ...pacv2beta3.PolicyTargetApplication) pacv2beta3.PolicyConfigTarget {
		return pacv2beta3.PolicyConfigTarget{Applications: list}
	}
	resources := func(list ...pacv2beta3.PolicyTargetResource) pacv2beta3.PolicyConfigTarget {
		return pacv2beta3.PolicyConfigTarget{Resources: list}
	}
	existing := []pacv2beta3.PolicyConfig{
		config("team-a-limits", namespaces("team-a", "team-b"), map[string][]string{"limits": {"max"}}),
		config("web-app", apps(pacv2beta3.PolicyTargetApplication{Kind: "Kustomization", Name: "web", Namespace: "flux-system"}),
			map[string][]string{"limits": {"max"}}),
		config("db-any-namespace", resources(pacv2beta3.PolicyTargetResource{Kind: "StatefulSet", Name: "db"}),
			map[string][]string{"limits": {"max"}}),
	}

	tests := []struct {
		name       string
		version    string
		cfg        pacv2beta3.PolicyConfig
		wantCauses []string
	}{
		{
			name:    "distinct namespaces",
			version: "v2beta2",
			cfg:     config("c", namespaces("team-c"), map[string][]string{"limits": {"max"}}),
		},
		{
			name:    "same namespace, other parameter",
			version: "v2beta3",
			cfg:     config("c", namespaces("team-a"), map[string][]string{"limits": {"min"}}),
		},
		{
			name:    "same namespace, other policy",
			version: "v2beta3",
			cfg:     config("c", namespaces("team-a"), map[string][]string{"other": {"max"}}),
		},
		{
			name:    "update of the same config",
			version: "v2beta3",
			cfg:     config("team-a-limits", namespaces("team-a"), map[string][]string{"limits": {"max"}}),
		},
		{
			name:    "other match type never overlaps",
			version: "v2beta3",
			cfg:     config("c", pacv2beta3.PolicyConfigTarget{Workspaces: []string{"team-a"}}, map[string][]string{"limits": {"max"}}),
		},
		{
			name:    "overlapping namespace",
			version: "v2beta3",
			cfg:     config("c", namespaces("team-z", "team-b"), map[string][]string{"limits": {"max", "min"}}),
			wantCauses: []string{
				`spec.match.namespaces[1]: Invalid value: "team-b": PolicyConfig team-a-limits also targets team-b and sets limits.max`,
			},
		},
		{
			name:    "overlapping app",
			version: "v2beta2",
			cfg: config("c", apps(pacv2beta3.PolicyTargetApplication{Kind: "Kustomization", Name: "web", Namespace: "flux-system"}),
				map[string][]string{"limits": {"max"}}),
			wantCauses: []string{`spec.match.apps[0]`, `PolicyConfig web-app also targets Kustomization flux-system/web`},
		},
		{
			name:    "app of other kind",
			version: "v2beta3",
			cfg: config("c", apps(pacv2beta3.PolicyTargetApplication{Kind: "HelmRelease", Name: "web", Namespace: "flux-system"}),
				map[string][]string{"limits": {"max"}}),
		},
		{
			name:    "resource overlapping one without namespace",
			version: "v2beta3",
			cfg: config("c", resources(pacv2beta3.PolicyTargetResource{Kind: "StatefulSet", Name: "db", Namespace: "data"}),
				map[string][]string{"limits": {"max"}}),
			wantCauses: []string{`spec.match.resources[0]: Invalid value: "StatefulSet data/db": PolicyConfig db-any-namespace`},
		},
		{
			name:       "no match type",
			version:    "v2beta3",
			cfg:        config("c", pacv2beta3.PolicyConfigTarget{}, map[string][]string{"limits": {"max"}}),
			wantCauses: []string{"spec.match: Required value: set exactly one of workspaces, namespaces, apps or resources"},
		},
		{
			name:    "several match types",
			version: "v2beta2",
			cfg: config("c", pacv2beta3.PolicyConfigTarget{Namespaces: []string{"x"}, Workspaces: []string{"y"}},
				map[string][]string{"limits": {"max"}}),
			wantCauses: []string{`spec.match: Invalid value: "workspaces, namespaces": set exactly one of`},
		},
	}
	v := NewPolicyConfigValidator(kube.NewScheme(), listReader{configs: existing})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := v.Handle(context.Background(), configRequest(t, tt.version, tt.cfg))
			if len(tt.wantCauses) == 0 {
				if !resp.Allowed {
					t.Fatalf("denied: %v %v", resp.Result.Message, causes(resp))
				}
				return
			}
			if resp.Allowed {
				t.Fatalf("allowed, want denied with %v", tt.wantCauses)
			}
			joined := strings.Join(causes(resp), "\n")
			for _, want := range tt.wantCauses {
				if !strings.Contains(joined, want) {
					t.Errorf("causes %q do not contain %q", joined, want)
				}
			}
		})
	}
}
