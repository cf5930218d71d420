package policy

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// createPolicySet creates a PolicySet and deletes it when the spec ends, so
// that other specs see every policy active in every mode.
func createPolicySet(mode string, filters pacv2beta2.PolicySetFilters) *pacv2beta2.PolicySet {
	set := &pacv2beta2.PolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("set")},
		Spec:       pacv2beta2.PolicySetSpec{Mode: mode, Filters: filters},
	}
	Expect(k8sClient.Create(ctx, set)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, set))).To(Succeed()) })
	return set
}

func setReadyCondition(g Gomega, set *pacv2beta2.PolicySet) *metav1.Condition {
	return readyAtGeneration(g, set,
		func() []metav1.Condition { return set.Status.Conditions },
		func() int64 { return set.Status.ObservedGeneration })
}

var _ = Describe("PolicySet reconciler", func() {
	It("lists the selected policies and narrows their modes", func() {
		tag := uniqueName("tag")
		tagged := createPolicy(uniqueName("tagged"), violationCode("test.tagged"), func(p *pacv2beta3.Policy) {
			p.Spec.Tags = []string{tag}
		})
		byID := createPolicy(uniqueName("byid"), violationCode("test.byid"))
		other := createPolicy(uniqueName("other"), violationCode("test.other"))

		set := createPolicySet("audit", pacv2beta2.PolicySetFilters{Tags: []string{tag}, IDs: []string{byID.Name}})

		Eventually(func(g Gomega) {
			ready := setReadyCondition(g, set)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.Reason).To(Equal(pacv2beta2.PolicySetResolvedReason))
			g.Expect(set.Status.Policies).To(ConsistOf(tagged.Name, byID.Name))
			g.Expect(set.Status.PolicyCount).To(BeEquivalentTo(2))
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			policyReady(g, tagged)
			g.Expect(tagged.Status.Modes).To(ConsistOf("audit", "admission"))
			policyReady(g, other)
			g.Expect(other.Status.Modes).To(ConsistOf("admission"), "an audit set exists that does not select it")
		}).Should(Succeed())

		// A policy created later joins the set when it matches.
		late := createPolicy(uniqueName("late"), violationCode("test.late"), func(p *pacv2beta3.Policy) {
			p.Spec.Tags = []string{tag}
		})
		Eventually(func(g Gomega) {
			setReadyCondition(g, set)
			g.Expect(set.Status.Policies).To(ContainElement(late.Name))
		}).Should(Succeed())
	})

	It("reports NoMatchingPolicies when the filters select nothing", func() {
		set := createPolicySet("admission", pacv2beta2.PolicySetFilters{Categories: []string{uniqueName("nothing")}})
		Eventually(func(g Gomega) {
			ready := setReadyCondition(g, set)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(pacv2beta2.PolicySetNoMatchingPoliciesReason))
			g.Expect(set.Status.Policies).To(BeEmpty())
			g.Expect(set.Status.PolicyCount).To(BeZero())
		}).Should(Succeed())
	})
})
