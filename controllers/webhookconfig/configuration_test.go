package webhookconfig

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// enforcementWebhook returns the enforcement configuration's webhook.
func enforcementWebhook(g Gomega) (*admissionregistrationv1.ValidatingWebhookConfiguration, admissionregistrationv1.ValidatingWebhook) {
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: EnforcementConfigurationName}, cfg)).To(Succeed())
	g.Expect(cfg.Webhooks).To(HaveLen(1))
	return cfg, cfg.Webhooks[0]
}

// hasRule reports whether a rule of the webhook covers the resource of the
// group in all versions.
func hasRule(webhook admissionregistrationv1.ValidatingWebhook, group, resource string) bool {
	for _, r := range webhook.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
			slices.Equal(r.APIVersions, []string{"*"}) {
			return true
		}
	}
	return false
}

// kindPolicy creates a policy that targets the kind and never finds a
// violation.
func kindPolicy(kind string) *pacv2beta3.Policy {
	p := &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("td.test.kind")},
		Spec: pacv2beta3.PolicySpec{
			Name:     "Kind " + kind,
			Severity: pacv2beta3.SeverityLow,
			Code:     "package tdtest.kind\n\nimport rego.v1\n\nviolation contains \"never\" if false\n",
			Targets:  pacv2beta3.PolicyTargets{Kinds: []string{kind}},
		},
	}
	mustCreate(p)
	return p
}

var _ = Describe("Webhook configurations", func() {
	It("point the API server at the local webhook server with the CA bundle", func() {
		for _, name := range []string{EnforcementConfigurationName, ValidationConfigurationName} {
			cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			Eventually(func() error {
				return k8sClient.Get(ctx, client.ObjectKey{Name: name}, cfg)
			}).Should(Succeed())
			Expect(cfg.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "trusted-delivery"))
			for _, webhook := range cfg.Webhooks {
				Expect(webhook.ClientConfig.URL).NotTo(BeNil(), "webhook %s", webhook.Name)
				Expect(*webhook.ClientConfig.URL).To(HavePrefix(fmt.Sprintf("https://localhost:%d/", options.WebhookPort)))
				Expect(webhook.ClientConfig.CABundle).NotTo(BeEmpty(), "webhook %s", webhook.Name)
				Expect(webhook.AdmissionReviewVersions).To(Equal([]string{"v1"}))
			}
		}

		_, webhook := enforcementWebhook(Default)
		Expect(webhook.Name).To(Equal(EnforcementWebhookName))
		Expect(*webhook.FailurePolicy).To(Equal(admissionregistrationv1.Ignore))
		Expect(*webhook.SideEffects).To(Equal(admissionregistrationv1.SideEffectClassNoneOnDryRun))
		Expect(*webhook.TimeoutSeconds).To(BeNumerically("==", 10))
		Expect(webhook.NamespaceSelector.MatchExpressions).To(ConsistOf(metav1.LabelSelectorRequirement{
			Key:      "kubernetes.io/metadata.name",
			Operator: metav1.LabelSelectorOpNotIn,
			Values:   []string{"excluded-by-flag", metav1.NamespaceSystem, operatorNamespace},
		}))
	})

	It("adds and removes the rule of a policy's kind", func() {
		p := kindPolicy("ConfigMap")
		Eventually(func(g Gomega) {
			_, webhook := enforcementWebhook(g)
			g.Expect(hasRule(webhook, "", "configmaps")).To(BeTrue(), "rules: %v", webhook.Rules)
		}).Should(Succeed())

		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			_, webhook := enforcementWebhook(g)
			g.Expect(hasRule(webhook, "", "configmaps")).To(BeFalse(), "rules: %v", webhook.Rules)
		}).Should(Succeed())
	})

	It("drops the rules of policies that a PolicySet leaves out of admission", func() {
		p := kindPolicy("Secret")
		Eventually(func(g Gomega) {
			_, webhook := enforcementWebhook(g)
			g.Expect(hasRule(webhook, "", "secrets")).To(BeTrue(), "rules: %v", webhook.Rules)
		}).Should(Succeed())

		mustCreate(&pacv2beta2.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("admission-only-other")},
			Spec: pacv2beta2.PolicySetSpec{
				Mode:    "admission",
				Filters: pacv2beta2.PolicySetFilters{IDs: []string{"td.test.not-" + p.Name}},
			},
		})
		Eventually(func(g Gomega) {
			_, webhook := enforcementWebhook(g)
			g.Expect(hasRule(webhook, "", "secrets")).To(BeFalse(), "rules: %v", webhook.Rules)
		}).Should(Succeed())
	})

	It("adds the rule of a kind when its CRD is installed later", func() {
		kindPolicy("Widget")
		Eventually(func(g Gomega) {
			cfg, _ := enforcementWebhook(g)
			g.Expect(cfg.Annotations).To(HaveKeyWithValue(UnresolvedKindsAnnotation, ContainSubstring("Widget")))
		}).Should(Succeed())

		crd := widgetCRD()
		mustCreate(crd)
		Eventually(func(g Gomega) {
			cfg, webhook := enforcementWebhook(g)
			g.Expect(hasRule(webhook, "example.com", "widgets")).To(BeTrue(), "rules: %v", webhook.Rules)
			g.Expect(cfg.Annotations).NotTo(HaveKey(UnresolvedKindsAnnotation))
		}).Should(Succeed())
	})

	It("restores the configurations after someone changes them", func() {
		Eventually(func(g Gomega) {
			cfg, _ := enforcementWebhook(g)
			cfg.Webhooks[0].FailurePolicy = ptr.To(admissionregistrationv1.Fail)
			g.Expect(k8sClient.Update(ctx, cfg)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			_, webhook := enforcementWebhook(g)
			g.Expect(*webhook.FailurePolicy).To(Equal(admissionregistrationv1.Ignore))
		}).Should(Succeed())

		validation := &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: ValidationConfigurationName},
		}
		Expect(k8sClient.Delete(ctx, validation)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(validation), validation)).To(Succeed())
			g.Expect(validation.Webhooks).To(HaveLen(3))
		}).Should(Succeed())
	})

	It("rejects a Policy whose Rego does not compile through the validation webhook", func() {
		Eventually(func(g Gomega) {
			err := k8sClient.Create(ctx, &pacv2beta3.Policy{
				ObjectMeta: metav1.ObjectMeta{Name: uniqueName("td.test.broken")},
				Spec: pacv2beta3.PolicySpec{
					Name:     "Broken",
					Severity: pacv2beta3.SeverityLow,
					Code:     "package broken\n\nviolation contains if {\n",
				},
			}, client.DryRunAll)
			g.Expect(err).To(MatchError(ContainSubstring(`admission webhook "policies.pac.weave.works" denied the request`)))
		}).Should(Succeed())
	})

	It("reports ready once the certificate, the server and the engine are ready", func() {
		Expect(readyz(nil)).To(Succeed())
	})
})

// widgetCRD returns a namespaced CRD for kind Widget in example.com.
func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type:                   "object",
					XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}
