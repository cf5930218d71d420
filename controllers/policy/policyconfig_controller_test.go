package policy

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// createPolicyConfig creates a PolicyConfig for namespace "apps" and deletes
// it when the spec ends.
func createPolicyConfig(config map[string]map[string]string) *pacv2beta3.PolicyConfig {
	cfg := &pacv2beta3.PolicyConfig{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("config")},
		Spec: pacv2beta3.PolicyConfigSpec{
			Match:  pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}},
			Config: map[string]pacv2beta3.PolicyConfigConfig{},
		},
	}
	for policyID, params := range config {
		values := map[string]apiextensionsv1.JSON{}
		for name, raw := range params {
			values[name] = apiextensionsv1.JSON{Raw: []byte(raw)}
		}
		cfg.Spec.Config[policyID] = pacv2beta3.PolicyConfigConfig{Parameters: values}
	}
	Expect(k8sClient.Create(ctx, cfg)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cfg))).To(Succeed()) })
	return cfg
}

var _ = Describe("PolicyConfig reconciler", func() {
	It("reports a missing policy until it is created", func() {
		missing := uniqueName("missing")
		cfg := createPolicyConfig(map[string]map[string]string{missing: {"limit": "3"}})

		Eventually(func(g Gomega) {
			ready := configReady(g, cfg)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyConfigPolicyNotFoundReason))
			g.Expect(cfg.Status.MissingPolicies).To(ConsistOf(missing))
		}).Should(Succeed())

		createPolicy(missing, violationCode("test.missing"), func(p *pacv2beta3.Policy) {
			p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "limit", Type: "integer"}}
		})
		Eventually(func(g Gomega) {
			ready := configReady(g, cfg)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyConfigValidReason))
			g.Expect(cfg.Status.MissingPolicies).To(BeEmpty())
		}).Should(Succeed())
	})

	It("reports parameters the policy does not declare", func() {
		p := createPolicy(uniqueName("declares"), violationCode("test.declares"), func(p *pacv2beta3.Policy) {
			p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "limit", Type: "integer"}}
		})
		cfg := createPolicyConfig(map[string]map[string]string{p.Name: {"limit": "3", "limt": "4"}})

		Eventually(func(g Gomega) {
			ready := configReady(g, cfg)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyConfigUnknownParameterReason))
			g.Expect(cfg.Status.UnknownParameters).To(ConsistOf(p.Name + ".limt"))
		}).Should(Succeed())
	})

	It("reports a value of the wrong type", func() {
		p := createPolicy(uniqueName("typed"), violationCode("test.typed"), func(p *pacv2beta3.Policy) {
			p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "limit", Type: "integer"}}
		})
		cfg := createPolicyConfig(map[string]map[string]string{p.Name: {"limit": `"three"`}})

		Eventually(func(g Gomega) {
			ready := configReady(g, cfg)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyConfigInvalidValueReason))
			g.Expect(ready.Message).To(ContainSubstring(`value "three" is not of type integer`))
		}).Should(Succeed())
	})
})
