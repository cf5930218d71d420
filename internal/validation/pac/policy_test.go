package pac

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// policyRequest returns an admission request for a Policy manifest of the
// version, given as the JSON of its spec.
func policyRequest(t *testing.T, op admissionv1.Operation, version, name string, spec map[string]any) admission.Request {
	t.Helper()
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Group: "pac.weave.works", Version: version, Kind: "Policy"},
		Resource:  metav1.GroupVersionResource{Group: "pac.weave.works", Version: version, Resource: "policies"},
		Name:      name,
		Operation: op,
		Object:    rawObject(t, "pac.weave.works/"+version, "Policy", name, spec),
	}}
}

func rawObject(t *testing.T, apiVersion, kind, name string, spec map[string]any) runtime.RawExtension {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: data}
}

func policySpec(code string, params ...map[string]any) map[string]any {
	list := make([]any, 0, len(params))
	for _, p := range params {
		list = append(list, p)
	}
	return map[string]any{
		"name":       "Test",
		"severity":   "high",
		"code":       code,
		"parameters": list,
	}
}

const validV0Code = `package weave.test
import future.keywords.in
violation[result] {
  some c in input.review.object.spec.containers
  result := {"msg": c.name}
}`

// causes returns "field: message" for each cause of a denied response.
func causes(resp admission.Response) []string {
	if resp.Result == nil || resp.Result.Details == nil {
		return nil
	}
	var out []string
	for _, c := range resp.Result.Details.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

func TestPolicyValidator(t *testing.T) {
	v := NewPolicyValidator(kube.NewScheme())
	tests := []struct {
		name       string
		version    string
		policyName string
		spec       map[string]any
		// wantCauses are substrings of the denial causes, in order; none
		// means the request is allowed.
		wantCauses []string
	}{
		{name: "v0 library policy as v2beta2", version: "v2beta2", spec: policySpec(validV0Code)},
		{
			name:    "v1 policy as v2beta3",
			version: "v2beta3",
			spec:    policySpec("package t\nviolation contains \"x\" if input.review.name == \"a\"\n"),
		},
		{
			name:       "syntax error with line",
			version:    "v2beta3",
			spec:       policySpec("package t\n\nviolation contains x if {\n  x := [1, 2\n}\n"),
			wantCauses: []string{"spec.code: Invalid value: Rego does not compile: rego v1: line 5, column 1"},
		},
		{
			name:       "unsafe variable with line",
			version:    "v2beta2",
			spec:       policySpec("package t\nimport future.keywords.in\nviolation[r] {\n  r := unknown\n}\n"),
			wantCauses: []string{"spec.code", "line 4, column 3", "unknown is unsafe"},
		},
		{
			name:       "missing violation rule",
			version:    "v2beta3",
			spec:       policySpec("package t\ndeny contains \"x\" if true\n"),
			wantCauses: []string{`spec.code`, `defines no "violation" rule`},
		},
		{
			name:    "spec.id differs from name",
			version: "v2beta2",
			spec: func() map[string]any {
				s := policySpec(validV0Code)
				s["id"] = "other-id"
				return s
			}(),
			wantCauses: []string{`spec.id: Invalid value: "other-id": must be equal to metadata.name "p"`},
		},
		{
			name:    "default does not match type",
			version: "v2beta3",
			spec: policySpec(validV0Code,
				map[string]any{"name": "a", "type": "string", "value": "x"},
				map[string]any{"name": "b", "type": "boolean", "value": true},
				map[string]any{"name": "replicas", "type": "integer", "value": 1.5},
			),
			wantCauses: []string{`spec.parameters[2].value`, `default of parameter "replicas": value 1.5 is not of type integer`},
		},
		{
			name:    "integer-valued float is an integer",
			version: "v2beta3",
			spec: policySpec(validV0Code,
				map[string]any{"name": "replicas", "type": "integer", "value": 3.0},
			),
		},
		{
			name:    "null default is no default",
			version: "v2beta2",
			spec: policySpec(validV0Code,
				map[string]any{"name": "exclude", "type": "array", "value": nil},
			),
		},
		{
			name:    "duplicate parameter names",
			version: "v2beta3",
			spec: policySpec(validV0Code,
				map[string]any{"name": "a", "type": "string"},
				map[string]any{"name": "a", "type": "integer"},
			),
			wantCauses: []string{`spec.parameters[1].name: Duplicate value: "a"`},
		},
		{
			name:    "several errors at once",
			version: "v2beta3",
			spec: func() map[string]any {
				s := policySpec("package t\n", map[string]any{"name": "n", "type": "number", "value": "1"})
				s["id"] = "x"
				return s
			}(),
			wantCauses: []string{"spec.id", "spec.parameters[0].value", "spec.code"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := v.Handle(context.Background(), policyRequest(t, admissionv1.Create, tt.version, "p", tt.spec))
			if len(tt.wantCauses) == 0 {
				if !resp.Allowed {
					t.Fatalf("denied: %v %v", resp.Result.Message, causes(resp))
				}
				return
			}
			if resp.Allowed {
				t.Fatalf("allowed, want denied with %v", tt.wantCauses)
			}
			if resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
				t.Errorf("Result code %d reason %s, want 422 Invalid", resp.Result.Code, resp.Result.Reason)
			}
			if !strings.HasPrefix(resp.Result.Message, `Policy.pac.weave.works "p" is invalid`) {
				t.Errorf("Message = %q, want it to name the Policy", resp.Result.Message)
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

func TestPolicyValidatorUpdate(t *testing.T) {
	v := NewPolicyValidator(kube.NewScheme())
	broken := policySpec("package t\nviolation contains x if { x := y }\n")

	// A label-only update of a policy stored before the webhook existed
	// is allowed, so that it can still be edited and deleted.
	req := policyRequest(t, admissionv1.Update, "v2beta3", "p", broken)
	req.OldObject = rawObject(t, "pac.weave.works/v2beta3", "Policy", "p", broken)
	if resp := v.Handle(context.Background(), req); !resp.Allowed {
		t.Errorf("unchanged spec denied: %v", resp.Result.Message)
	}

	req.OldObject = rawObject(t, "pac.weave.works/v2beta3", "Policy", "p", policySpec(validV0Code))
	if resp := v.Handle(context.Background(), req); resp.Allowed {
		t.Errorf("update to broken code allowed")
	}
}

func TestPolicyValidatorOtherOperationsAndBadInput(t *testing.T) {
	v := NewPolicyValidator(kube.NewScheme())
	del := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Delete}}
	if resp := v.Handle(context.Background(), del); !resp.Allowed {
		t.Errorf("DELETE denied: %v", resp.Result)
	}

	req := policyRequest(t, admissionv1.Create, "v1", "p", policySpec(validV0Code))
	resp := v.Handle(context.Background(), req)
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("unsupported version: allowed %v code %d, want 400", resp.Allowed, resp.Result.Code)
	}
	if !strings.Contains(resp.Result.Message, "unsupported version v1 of Policy") {
		t.Errorf("message = %q", resp.Result.Message)
	}
}
