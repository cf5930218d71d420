package policy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

func TestSetReadyKeepsReadyFirst(t *testing.T) {
	conditions := []metav1.Condition{{Type: "Other", Status: metav1.ConditionTrue, Reason: "Fine"}}
	setReady(&conditions, readyCondition(2, true, "Compiled", "ok"))
	if len(conditions) != 2 || conditions[0].Type != pacv2beta3.ReadyCondition {
		t.Fatalf("conditions = %+v, want Ready first", conditions)
	}
	if conditions[0].ObservedGeneration != 2 {
		t.Errorf("ObservedGeneration = %d, want 2", conditions[0].ObservedGeneration)
	}
	transition := conditions[0].LastTransitionTime

	setReady(&conditions, readyCondition(3, true, "Compiled", "ok again"))
	if !conditions[0].LastTransitionTime.Equal(&transition) {
		t.Errorf("LastTransitionTime changed without a status change")
	}
	if conditions[0].Message != "ok again" {
		t.Errorf("Message = %q, want the new message", conditions[0].Message)
	}
}

func TestReadyEvent(t *testing.T) {
	compiled := readyCondition(1, true, pacv2beta3.PolicyCompiledReason, "compiled")
	broken := readyCondition(2, false, pacv2beta3.PolicyCompileErrorReason, "line 3")
	tests := []struct {
		name       string
		before     *metav1.Condition
		after      metav1.Condition
		wantEmit   bool
		wantType   string
		wantReason string
	}{
		{name: "first Ready", after: compiled, wantEmit: true, wantType: corev1.EventTypeNormal, wantReason: "Compiled"},
		{name: "unchanged", before: &compiled, after: compiled, wantEmit: false},
		{
			name: "stops compiling", before: &compiled, after: broken,
			wantEmit: true, wantType: corev1.EventTypeWarning, wantReason: "CompileError",
		},
		{
			name: "new compile error message", before: &broken,
			after:    readyCondition(3, false, pacv2beta3.PolicyCompileErrorReason, "line 4"),
			wantEmit: true, wantType: corev1.EventTypeWarning, wantReason: "CompileError",
		},
		{name: "generation only", before: &compiled, after: readyCondition(5, true, "Compiled", "compiled"), wantEmit: false},
		{
			name:   "healthy message only",
			before: ptr.To(readyCondition(1, true, "Resolved", "selects 1 policies for audit mode")),
			after:  readyCondition(1, true, "Resolved", "selects 2 policies for audit mode"), wantEmit: false,
		},
		{
			name: "becomes healthy with another reason", before: &broken, after: compiled,
			wantEmit: true, wantType: corev1.EventTypeNormal, wantReason: "Compiled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := readyEvent(tt.before, tt.after)
			if ok != tt.wantEmit {
				t.Fatalf("readyEvent() emit = %v, want %v", ok, tt.wantEmit)
			}
			if !ok {
				return
			}
			if ev.eventType != tt.wantType {
				t.Errorf("type = %q, want %q", ev.eventType, tt.wantType)
			}
			if ev.reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", ev.reason, tt.wantReason)
			}
		})
	}
}

func TestIsTerminalPolicyReason(t *testing.T) {
	for reason, want := range map[string]bool{
		pacv2beta3.PolicyCompileErrorReason:         true,
		pacv2beta3.PolicyMissingViolationRuleReason: true,
		pacv2beta3.PolicyInvalidParametersReason:    false,
		pacv2beta3.PolicyCompiledReason:             false,
		pacv2beta3.PolicyProviderNotEvaluatedReason: false,
	} {
		if got := isTerminalPolicyReason(reason); got != want {
			t.Errorf("isTerminalPolicyReason(%q) = %v, want %v", reason, got, want)
		}
	}
}

func TestPolicySetReadyCondition(t *testing.T) {
	set := &pacv2beta2.PolicySet{Spec: pacv2beta2.PolicySetSpec{Mode: "tf-admission"}}
	set.Generation = 4

	none := policySetReadyCondition(set, nil)
	if none.Status != metav1.ConditionFalse || none.Reason != pacv2beta2.PolicySetNoMatchingPoliciesReason {
		t.Errorf("no members: %+v, want False NoMatchingPolicies", none)
	}
	if !strings.Contains(none.Message, "terraform") {
		t.Errorf("message %q does not name the terraform provider of tf-admission", none.Message)
	}

	some := policySetReadyCondition(set, []string{"a", "b"})
	if some.Status != metav1.ConditionTrue || some.Reason != pacv2beta2.PolicySetResolvedReason || some.ObservedGeneration != 4 {
		t.Errorf("two members: %+v, want True Resolved at generation 4", some)
	}
}

func TestCheckPolicyConfig(t *testing.T) {
	policies := map[string]*pacv2beta3.Policy{
		"limits": {Spec: pacv2beta3.PolicySpec{Parameters: []pacv2beta3.PolicyParameters{
			{Name: "max", Type: "integer"},
			{Name: "names", Type: "array"},
		}}},
	}
	raw := func(s string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(s)} }
	tests := []struct {
		name        string
		config      map[string]map[string]apiextensionsv1.JSON
		wantMissing []string
		wantUnknown []string
		wantInvalid int
		wantReason  string
	}{
		{
			name:       "valid",
			config:     map[string]map[string]apiextensionsv1.JSON{"limits": {"max": raw("3"), "names": raw(`["a"]`)}},
			wantReason: pacv2beta3.PolicyConfigValidReason,
		},
		{
			name:       "null value means unset",
			config:     map[string]map[string]apiextensionsv1.JSON{"limits": {"max": raw("null")}},
			wantReason: pacv2beta3.PolicyConfigValidReason,
		},
		{
			name: "missing policy first",
			config: map[string]map[string]apiextensionsv1.JSON{
				"gone":   {"x": raw("1")},
				"limits": {"maximum": raw("3"), "max": raw("3.5")},
			},
			wantMissing: []string{"gone"},
			wantUnknown: []string{"limits.maximum"},
			wantInvalid: 1,
			wantReason:  pacv2beta3.PolicyConfigPolicyNotFoundReason,
		},
		{
			name:        "unknown parameter",
			config:      map[string]map[string]apiextensionsv1.JSON{"limits": {"maximum": raw("3")}},
			wantUnknown: []string{"limits.maximum"},
			wantReason:  pacv2beta3.PolicyConfigUnknownParameterReason,
		},
		{
			name:        "invalid value",
			config:      map[string]map[string]apiextensionsv1.JSON{"limits": {"names": raw(`"a"`)}},
			wantInvalid: 1,
			wantReason:  pacv2beta3.PolicyConfigInvalidValueReason,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &pacv2beta3.PolicyConfig{Spec: pacv2beta3.PolicyConfigSpec{Config: map[string]pacv2beta3.PolicyConfigConfig{}}}
			for id, params := range tt.config {
				cfg.Spec.Config[id] = pacv2beta3.PolicyConfigConfig{Parameters: params}
			}
			check := checkPolicyConfig(cfg, policies)
			if !slices.Equal(check.missingPolicies, tt.wantMissing) {
				t.Errorf("missingPolicies = %v, want %v", check.missingPolicies, tt.wantMissing)
			}
			if !slices.Equal(check.unknownParameters, tt.wantUnknown) {
				t.Errorf("unknownParameters = %v, want %v", check.unknownParameters, tt.wantUnknown)
			}
			if len(check.invalidValues) != tt.wantInvalid {
				t.Errorf("invalidValues = %v, want %d", check.invalidValues, tt.wantInvalid)
			}
			ready := policyConfigReadyCondition(1, check)
			if ready.Reason != tt.wantReason {
				t.Errorf("Ready reason = %q, want %q (message %q)", ready.Reason, tt.wantReason, ready.Message)
			}
			if wantTrue := tt.wantReason == pacv2beta3.PolicyConfigValidReason; (ready.Status == metav1.ConditionTrue) != wantTrue {
				t.Errorf("Ready status = %s, want True only for Valid", ready.Status)
			}
		})
	}
}
