package audit

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

var _ = Describe("Workspace compliance", func() {
	var a *Auditor

	BeforeEach(func() {
		a = newTestAuditor(nil, nil)
	})

	// createWorkspace creates a Workspace and sets a Ready condition as the
	// Workspace reconciler would, to check that the audit leaves it alone.
	createWorkspace := func(name string, namespaces ...string) *tenancyv1alpha1.Workspace {
		ws := &tenancyv1alpha1.Workspace{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       tenancyv1alpha1.WorkspaceSpec{Namespaces: namespaces},
		}
		Expect(k8sClient.Create(ctx, ws)).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ws))).To(Succeed())
		})
		base := ws.DeepCopy()
		meta.SetStatusCondition(&ws.Status.Conditions, metav1.Condition{
			Type: tenancyv1alpha1.ReadyCondition, Status: metav1.ConditionTrue,
			Reason: tenancyv1alpha1.ReconciledReason, Message: "in place",
		})
		Expect(k8sClient.Status().Patch(ctx, ws, client.MergeFrom(base), client.FieldOwner(kube.FieldManager))).To(Succeed())
		return ws
	}

	getWorkspace := func(name string) *tenancyv1alpha1.Workspace {
		ws := &tenancyv1alpha1.Workspace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		return ws
	}

	It("follows the violations in the Workspace's namespaces", func() {
		name := "ws-" + rand.String(6)
		first := createNamespace(name)
		second := createNamespace(name)
		createWorkspace(name, first, second)
		high := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, first, "Deployment")
		low := missingLabelPolicy("owner", pacv2beta3.SeverityLow, second, "Deployment")
		createPolicy(a, high)
		createPolicy(a, low)
		web := createDeployment(first, "web", nil)
		createDeployment(second, "api", nil)
		createDeployment(second, "db", nil)

		run(a)
		ws := getWorkspace(name)
		compliant := meta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.CompliantCondition)
		Expect(compliant).NotTo(BeNil())
		Expect(compliant.Status).To(Equal(metav1.ConditionFalse))
		Expect(compliant.Reason).To(Equal(tenancyv1alpha1.ViolationsFoundReason))
		Expect(compliant.Message).To(Equal("the last audit found 3 violations in the namespaces, the worst of high severity"))
		Expect(ws.Status.Violations).To(HaveValue(BeEquivalentTo(3)))
		Expect(meta.IsStatusConditionTrue(ws.Status.Conditions, tenancyv1alpha1.ReadyCondition)).To(BeTrue(),
			"the audit removed the Ready condition of the Workspace reconciler")
		Expect(fieldManagersOf(ws.ManagedFields, "status")).To(ContainElements(FieldManager, kube.FieldManager))

		By("keeping the last transition time while the status stays False")
		transition := compliant.LastTransitionTime
		web.Labels = map[string]string{"owner": "team-a"}
		Expect(k8sClient.Update(ctx, web)).To(Succeed())
		run(a)
		ws = getWorkspace(name)
		compliant = meta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.CompliantCondition)
		Expect(compliant.Message).To(Equal("the last audit found 2 violations in the namespaces, the worst of low severity"))
		Expect(compliant.LastTransitionTime).To(Equal(transition))
		Expect(ws.Status.Violations).To(HaveValue(BeEquivalentTo(2)))

		By("becoming compliant when the violations are fixed")
		a.Engine.RemovePolicy(low.Name)
		run(a)
		ws = getWorkspace(name)
		compliant = meta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.CompliantCondition)
		Expect(compliant.Status).To(Equal(metav1.ConditionTrue))
		Expect(compliant.Reason).To(Equal(tenancyv1alpha1.NoViolationsReason))
		Expect(ws.Status.Violations).To(HaveValue(BeEquivalentTo(0)))
		Expect(meta.IsStatusConditionTrue(ws.Status.Conditions, tenancyv1alpha1.ReadyCondition)).To(BeTrue())
	})

	It("marks a Workspace without violations compliant", func() {
		name := "ws-" + rand.String(6)
		ns := createNamespace(name)
		createWorkspace(name, ns)
		createPolicy(a, missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "Deployment"))
		createDeployment(ns, "web", map[string]string{"owner": "team-a"})

		run(a)
		ws := getWorkspace(name)
		Expect(meta.IsStatusConditionTrue(ws.Status.Conditions, tenancyv1alpha1.CompliantCondition)).To(BeTrue())
		Expect(ws.Status.Violations).To(HaveValue(BeEquivalentTo(0)))
		r, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Labels).To(HaveKeyWithValue(tenancyv1alpha1.WorkspaceLabel, name))
	})
})
