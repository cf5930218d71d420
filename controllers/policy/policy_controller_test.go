package policy

import (
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

var _ = Describe("Policy reconciler", func() {
	It("reports a compiling policy Ready with its modes", func() {
		p := createPolicy(uniqueName("compiles"), violationCode("test.compiles"))

		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyCompiledReason))
			g.Expect(ready.Message).To(ContainSubstring("Rego v1"))
			g.Expect(p.Status.Modes).To(ConsistOf("audit", "admission"))
		}).Should(Succeed())
		status, found := engine.Status(p.Name)
		Expect(found).To(BeTrue(), "the engine has the policy")
		Expect(status.Ready).To(BeTrue())
	})

	It("reports a broken policy with the compiler's line and a Warning event", func() {
		p := createPolicy(uniqueName("broken"), violationCode("test.broken"))
		Eventually(func(g Gomega) {
			g.Expect(policyReady(g, p).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		// The policy stops compiling: line 4 uses an unsafe variable.
		p.Spec.Code = "package test.broken\n\nviolation contains msg if {\n  msg := not_defined\n}\n"
		Expect(k8sClient.Update(ctx, p)).To(Succeed())

		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyCompileErrorReason))
			g.Expect(ready.Message).To(ContainSubstring("line 4, column"))
			g.Expect(ready.Message).To(ContainSubstring("not_defined"))
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			var warnings []string
			for _, e := range eventsAbout(g, p.Name) {
				if e.Type == corev1.EventTypeWarning {
					warnings = append(warnings, e.Reason)
				}
			}
			g.Expect(warnings).To(ContainElement(pacv2beta3.PolicyCompileErrorReason))
		}).Should(Succeed())
	})

	It("reports a module without a violation rule", func() {
		p := createPolicy(uniqueName("noviolation"), "package test.noviolation\n\ndeny contains \"x\" if true\n")
		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyMissingViolationRuleReason))
		}).Should(Succeed())
	})

	It("becomes Ready when a PolicyConfig sets its required parameter", func() {
		p := createPolicy(uniqueName("required"), violationCode("test.required"), func(p *pacv2beta3.Policy) {
			p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "registry", Type: "string", Required: true}}
		})
		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyInvalidParametersReason))
			g.Expect(ready.Message).To(ContainSubstring("registry"))
		}).Should(Succeed())

		cfg := &pacv2beta3.PolicyConfig{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("registry")},
			Spec: pacv2beta3.PolicyConfigSpec{
				Match: pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}},
				Config: map[string]pacv2beta3.PolicyConfigConfig{p.Name: {
					Parameters: map[string]apiextensionsv1.JSON{"registry": {Raw: []byte(`"trusted.example"`)}},
				}},
			},
		}
		Expect(k8sClient.Create(ctx, cfg)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cfg))).To(Succeed()) })

		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(pacv2beta3.PolicyCompiledReason))
		}).Should(Succeed())
	})

	It("applies a v2beta2 library manifest unchanged and reads it back as v2beta3", func() {
		data, err := os.ReadFile("../../internal/policy/testdata/containers-running-as-root.yaml")
		Expect(err).NotTo(HaveOccurred())
		manifest := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal(data, &manifest.Object)).To(Succeed())
		Expect(manifest.GetAPIVersion()).To(Equal("pac.weave.works/v2beta2"))
		Expect(k8sClient.Create(ctx, manifest)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, manifest))).To(Succeed()) })

		p := &pacv2beta3.Policy{ObjectMeta: metav1.ObjectMeta{Name: manifest.GetName()}}
		Eventually(func(g Gomega) {
			ready := policyReady(g, p)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Message).To(ContainSubstring("Rego v0"))
		}).Should(Succeed())
		Expect(p.Spec.Enabled).To(HaveValue(BeFalse()))
		Expect(p.Spec.Enforce).To(HaveValue(BeTrue()), "enforce defaults to true")
		Expect(strings.Contains(p.Spec.Code, "violation[result] {")).To(BeTrue(), "code is stored unchanged")

		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(pacv2beta3.GroupVersion.WithKind("Policy"))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(manifest), stored)).To(Succeed())
		Expect(stored.GetAPIVersion()).To(Equal("pac.weave.works/v2beta3"))
	})
})
