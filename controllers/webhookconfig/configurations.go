package webhookconfig

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/admission"
	"github.com/trusted-delivery/trusted-delivery/internal/validation/pac"
	tenancyvalidation "github.com/trusted-delivery/trusted-delivery/internal/validation/tenancy"
)

// Names of the configurations and webhooks that the reconciler owns.
const (
	EnforcementConfigurationName = "trusted-delivery-enforcement"
	ValidationConfigurationName  = "trusted-delivery-validation"

	EnforcementWebhookName  = "enforce.pac.weave.works"
	PolicyWebhookName       = "policies.pac.weave.works"
	PolicyConfigWebhookName = "policyconfigs.pac.weave.works"
	WorkspaceWebhookName    = "workspaces.tenancy.weave.works"
)

// UnresolvedKindsAnnotation lists, on the enforcement configuration, the
// kinds that admission policies target but the API server does not serve
// yet. They get a rule once a CRD or API serves them.
const UnresolvedKindsAnnotation = "pac.weave.works/unresolved-kinds"

// namespaceNameLabel is set by the API server on every namespace to its
// name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// validationTimeoutSeconds is the timeout of the webhooks that validate the
// operator's own kinds. Their only reads, in the Workspace and PolicyConfig
// checks, come from the cache.
const validationTimeoutSeconds = 10

// EnforcementConfiguration returns the desired enforcement configuration:
// one webhook with the rules, CREATE and UPDATE, the excluded namespaces,
// and no side effects for dryRun requests.
func EnforcementConfiguration(o *Options, set RuleSet, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	cfg := newConfiguration(EnforcementConfigurationName)
	if len(set.Unresolved) > 0 {
		cfg.Annotations = map[string]string{UnresolvedKindsAnnotation: strings.Join(set.Unresolved, ",")}
	}
	// The webhook writes Events, but not for dry-run requests.
	sideEffects := admissionregistrationv1.SideEffectClassNoneOnDryRun
	cfg.Webhooks = []admissionregistrationv1.ValidatingWebhook{{
		Name:         EnforcementWebhookName,
		ClientConfig: clientConfig(o, admission.EnforcePath, caBundle),
		Rules:        set.Rules,
		// Equivalent converts a request in another version of a covered
		// resource to the version in the rule. All versions are listed,
		// so requests arrive as sent.
		MatchPolicy:   ptr.To(admissionregistrationv1.Equivalent),
		FailurePolicy: ptr.To(admissionregistrationv1.FailurePolicyType(o.FailurePolicy)),
		NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key:      namespaceNameLabel,
				Operator: metav1.LabelSelectorOpNotIn,
				Values:   o.Excluded(),
			}},
		},
		MatchConditions:         MatchConditions(set, o.OperatorUsername()),
		SideEffects:             &sideEffects,
		TimeoutSeconds:          ptr.To(int32(o.Timeout.Seconds())),
		AdmissionReviewVersions: []string{"v1"},
	}}
	return cfg
}

// ValidationConfiguration returns the desired configuration of the webhooks
// that validate the operator's own kinds. They fail closed: a Policy whose
// Rego does not compile, or a Workspace that claims another's namespace,
// must not get in while the operator is down.
func ValidationConfiguration(o *Options, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	cfg := newConfiguration(ValidationConfigurationName)
	cfg.Webhooks = []admissionregistrationv1.ValidatingWebhook{
		validationWebhook(o, PolicyWebhookName, pac.PolicyPath, caBundle,
			"pac.weave.works", []string{"v2beta2", "v2beta3"}, "policies"),
		validationWebhook(o, PolicyConfigWebhookName, pac.PolicyConfigPath, caBundle,
			"pac.weave.works", []string{"v2beta2", "v2beta3"}, "policyconfigs"),
		validationWebhook(o, WorkspaceWebhookName, tenancyvalidation.WorkspacePath, caBundle,
			"tenancy.weave.works", []string{"v1alpha1"}, "workspaces"),
	}
	return cfg
}

func validationWebhook(o *Options, name, path string, caBundle []byte, group string, versions []string, resource string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name:         name,
		ClientConfig: clientConfig(o, path, caBundle),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{group},
				APIVersions: versions,
				Resources:   []string{resource},
				Scope:       ptr.To(admissionregistrationv1.ClusterScope),
			},
		}},
		// Exact sends the version the client used; the handlers decode
		// every served version.
		MatchPolicy:             ptr.To(admissionregistrationv1.Exact),
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](validationTimeoutSeconds),
		AdmissionReviewVersions: []string{"v1"},
	}
}

// clientConfig points the API server at the webhook server: the Service in
// a cluster, or https://localhost:<port> when the manager runs outside.
func clientConfig(o *Options, path string, caBundle []byte) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: caBundle}
	if o.Local() {
		cc.URL = ptr.To(fmt.Sprintf("https://localhost:%d%s", o.WebhookPort, path))
		return cc
	}
	cc.Service = &admissionregistrationv1.ServiceReference{
		Namespace: o.Namespace,
		Name:      o.ServiceName,
		Path:      ptr.To(path),
		Port:      ptr.To(int32(o.ServicePort)),
	}
	return cc
}

func newConfiguration(name string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
			Kind:       "ValidatingWebhookConfiguration",
		},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue},
		},
	}
}
