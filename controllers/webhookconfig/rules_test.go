package webhookconfig

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIndexResources(t *testing.T) {
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Kind: "ConfigMap", Verbs: []string{"create", "update", "list"}},
			{Name: "pods/status", Kind: "Pod", Verbs: []string{"update"}},
			{Name: "events", Kind: "Event", Verbs: []string{"create"}},
			{Name: "componentstatuses", Kind: "ComponentStatus", Verbs: []string{"get", "list"}},
		}},
		{GroupVersion: "events.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "events", Kind: "Event", Verbs: []string{"create", "update"}},
		}},
		nil,
	}
	got := IndexResources(lists)
	want := ResourceIndex{
		"ConfigMap": {{Group: "", Resource: "configmaps"}},
		"Event":     {{Group: "", Resource: "events"}, {Group: "events.k8s.io", Resource: "events"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IndexResources() mismatch (-want +got):\n%s", diff)
	}
}

func TestEnforcementRules(t *testing.T) {
	index := ResourceIndex{
		"Deployment":  {{Group: "apps", Resource: "deployments"}},
		"StatefulSet": {{Group: "apps", Resource: "statefulsets"}},
		"Service":     {{Group: "", Resource: "services"}},
		"Pod":         {{Group: "", Resource: "pods"}},
		"Event":       {{Group: "", Resource: "events"}, {Group: "events.k8s.io", Resource: "events"}},
	}
	tests := []struct {
		name     string
		kinds    []string
		allKinds bool
		want     RuleSet
	}{{
		name: "no kinds yields no rules",
		want: RuleSet{},
	}, {
		name:  "kinds of one group share a rule, groups are sorted",
		kinds: []string{"StatefulSet", "Service", "Deployment"},
		want: RuleSet{
			Kinds: []string{"Deployment", "Service", "StatefulSet"},
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule([]string{""}, []string{"services"}),
				rule([]string{"apps"}, []string{"deployments", "statefulsets"}),
			},
		},
	}, {
		name:  "pods bring the subresource of ephemeral containers",
		kinds: []string{"Pod", "Service"},
		want: RuleSet{
			Kinds: []string{"Pod", "Service"},
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule([]string{""}, []string{"pods", "pods/ephemeralcontainers", "services"}),
			},
		},
	}, {
		name:  "a kind served by two groups gets both",
		kinds: []string{"Event"},
		want: RuleSet{
			Kinds: []string{"Event"},
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule([]string{""}, []string{"events"}),
				rule([]string{"events.k8s.io"}, []string{"events"}),
			},
		},
	}, {
		name:  "a kind that is not served is unresolved",
		kinds: []string{"Widget", "Deployment"},
		want: RuleSet{
			Kinds:      []string{"Deployment"},
			Unresolved: []string{"Widget"},
			Rules:      []admissionregistrationv1.RuleWithOperations{rule([]string{"apps"}, []string{"deployments"})},
		},
	}, {
		name:     "a policy without kinds yields the wildcard rule",
		kinds:    []string{"Deployment"},
		allKinds: true,
		want: RuleSet{
			Wildcard: true,
			Kinds:    []string{"Deployment"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"*"},
					APIVersions: []string{"*"},
					Resources:   []string{"*", "pods/ephemeralcontainers"},
					Scope:       ptr.To(admissionregistrationv1.AllScopes),
				},
			}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnforcementRules(tt.kinds, tt.allKinds, index)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EnforcementRules() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchConditions(t *testing.T) {
	const operator = "system:serviceaccount:td:manager"
	tests := []struct {
		name     string
		set      RuleSet
		username string
		want     []admissionregistrationv1.MatchCondition
	}{{
		name: "no operator and explicit kinds need no condition",
		set:  RuleSet{Kinds: []string{"Deployment"}},
	}, {
		name:     "the operator's requests are excluded",
		set:      RuleSet{Kinds: []string{"Deployment"}},
		username: operator,
		want: []admissionregistrationv1.MatchCondition{{
			Name:       matchConditionOperator,
			Expression: `request.userInfo.username != "system:serviceaccount:td:manager"`,
		}},
	}, {
		name: "the wildcard leaves out high-churn resources",
		set:  RuleSet{Wildcard: true},
		want: []admissionregistrationv1.MatchCondition{{
			Name: matchConditionHighChurn,
			Expression: `!((request.resource.group in ["", "events.k8s.io"] && request.resource.resource in ["events"]) || ` +
				`(request.resource.group in ["coordination.k8s.io"] && request.resource.resource in ["leases"]) || ` +
				`(request.resource.group in ["authentication.k8s.io"] && request.resource.resource in ["tokenreviews"]) || ` +
				`(request.resource.group in ["authorization.k8s.io"] && request.resource.resource in ["subjectaccessreviews"]))`,
		}},
	}, {
		name: "the wildcard keeps a high-churn resource whose kind a policy names",
		set:  RuleSet{Wildcard: true, Kinds: []string{"Event", "Lease", "SubjectAccessReview"}},
		want: []admissionregistrationv1.MatchCondition{{
			Name:       matchConditionHighChurn,
			Expression: `!((request.resource.group in ["authentication.k8s.io"] && request.resource.resource in ["tokenreviews"]))`,
		}},
	}, {
		name: "the wildcard with every excluded kind named needs no condition",
		set:  RuleSet{Wildcard: true, Kinds: []string{"Event", "Lease", "SubjectAccessReview", "TokenReview"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MatchConditions(tt.set, tt.username)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MatchConditions() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnforcementConfigurationClientConfig(t *testing.T) {
	caBundle := []byte("ca")
	tests := []struct {
		name    string
		options Options
		want    admissionregistrationv1.WebhookClientConfig
	}{{
		name:    "in a cluster the Service is referenced",
		options: Options{Namespace: "td", ServiceName: "td-webhook", ServicePort: 443},
		want: admissionregistrationv1.WebhookClientConfig{
			CABundle: caBundle,
			Service: &admissionregistrationv1.ServiceReference{
				Namespace: "td", Name: "td-webhook", Path: ptr.To("/enforce"), Port: ptr.To[int32](443),
			},
		},
	}, {
		name:    "outside a cluster the URL is on localhost",
		options: Options{Namespace: "td", WebhookHost: "127.0.0.1", WebhookPort: 9443},
		want: admissionregistrationv1.WebhookClientConfig{
			CABundle: caBundle,
			URL:      ptr.To("https://localhost:9443/enforce"),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.options.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			cfg := EnforcementConfiguration(&tt.options, RuleSet{}, caBundle)
			if diff := cmp.Diff(tt.want, cfg.Webhooks[0].ClientConfig); diff != "" {
				t.Errorf("clientConfig mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		options Options
		wantErr string
	}{
		{name: "defaults are valid", options: Options{Namespace: "td"}},
		{name: "namespace is required", options: Options{}, wantErr: "the operator namespace is required"},
		{
			name:    "failure policy must be Ignore or Fail",
			options: Options{Namespace: "td", FailurePolicy: "Deny"},
			wantErr: `invalid --enforcement-failure-policy "Deny": use Ignore or Fail`,
		},
		{
			name:    "timeout above 30s is rejected",
			options: Options{Namespace: "td", Timeout: time.Minute},
			wantErr: "invalid --enforcement-timeout 1m0s: use 1s to 30s",
		},
		{
			name:    "cert source must be known",
			options: Options{Namespace: "td", CertSource: "vault"},
			wantErr: `invalid --cert-source "vault": use self or cert-manager`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.options.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestExcludedNamespaces(t *testing.T) {
	o := Options{Namespace: "td", ExcludedNamespaces: " team-x, ,kube-system,td "}
	want := []string{"kube-system", "td", "team-x"}
	if diff := cmp.Diff(want, o.Excluded()); diff != "" {
		t.Errorf("Excluded() mismatch (-want +got):\n%s", diff)
	}
}
