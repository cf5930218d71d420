package workspace

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

var _ = Describe("Namespace claims", func() {
	It("rejects a second Workspace listing a namespace in the webhook", func() {
		first, second := uniqueName("first"), uniqueName("second")
		shared := first + "-shared"
		createWorkspace(k8sClient, newWorkspace(first, []string{shared}))

		err := k8sClient.Create(ctx, newWorkspace(second, []string{second + "-own", shared}))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.namespaces[1]"))
		Expect(err.Error()).To(ContainSubstring(`already listed by Workspace "` + first + `"`))
	})

	It("reports a conflict when two Workspaces list one namespace", func() {
		first, second := uniqueName("first"), uniqueName("second")
		shared := first + "-shared"
		createWorkspace(k8sClient, newWorkspace(first, []string{shared}))
		expectReady(k8sClient, first)

		createWorkspace(k8sClient, newWorkspace(second, []string{second + "-own", shared}, skipValidation))
		conflict := expectCondition(k8sClient, second, tenancyv1alpha1.NamespacesReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.NamespaceConflictReason)
		Expect(conflict.Message).To(ContainSubstring("namespace " + shared + " belongs to Workspace " + first))
		expectCondition(k8sClient, second, tenancyv1alpha1.ReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.NamespaceConflictReason)

		ws := getWorkspace(k8sClient, second)
		Expect(ws.Status.Namespaces).To(ContainElement(And(
			HaveField("Name", shared),
			HaveField("State", tenancyv1alpha1.NamespaceStateConflict),
		)))
		Expect(ws.Status.NamespaceCount).To(Equal(int32(1)), "its own namespace is ready")
		expectEvent(k8sClient, "Workspace", second, corev1.EventTypeWarning, tenancyv1alpha1.NamespaceConflictReason)

		By("checking that the first Workspace keeps the namespace")
		expectReady(k8sClient, first)
		Eventually(func(g Gomega) {
			ns := getNamespace(g, k8sClient, shared)
			g.Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.TenantLabel, first))
			g.Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.WorkspaceLabel, first))
		}).Should(Succeed())
		Expect(k8sClient.Get(ctx, keyOf(shared, second), &corev1.ServiceAccount{})).
			To(MatchError(ContainSubstring("not found")), "no ServiceAccount of the second Workspace in the shared namespace")
	})

	It("adopts the namespace once the other Workspace lets it go", func() {
		first, second := uniqueName("first"), uniqueName("second")
		shared := first + "-shared"
		createWorkspace(k8sClient, newWorkspace(first, []string{first + "-own", shared}))
		expectReady(k8sClient, first)
		createWorkspace(k8sClient, newWorkspace(second, []string{shared}, skipValidation))
		expectCondition(k8sClient, second, tenancyv1alpha1.NamespacesReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.NamespaceConflictReason)

		ws := getWorkspace(k8sClient, first)
		ws.Spec.Namespaces = []string{first + "-own"}
		Expect(k8sClient.Update(ctx, ws)).To(Succeed())

		expectReady(k8sClient, second)
		Eventually(func(g Gomega) {
			ns := getNamespace(g, k8sClient, shared)
			g.Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.TenantLabel, second))
		}).Should(Succeed())
		expectEvent(k8sClient, "Workspace", second, corev1.EventTypeNormal, reasonNamespaceAdopted)
	})

	It("leaves a namespace labelled for another Workspace alone", func() {
		owner, claimant := uniqueName("owner"), uniqueName("claimant")
		namespace := owner + "-labelled"
		createWorkspace(k8sClient, newWorkspace(owner, []string{owner + "-own"}))
		createNamespace(k8sClient, namespace, map[string]string{tenancyv1alpha1.TenantLabel: owner})

		createWorkspace(k8sClient, newWorkspace(claimant, []string{namespace}))
		conflict := expectCondition(k8sClient, claimant, tenancyv1alpha1.NamespacesReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.NamespaceConflictReason)
		Expect(conflict.Message).To(ContainSubstring(tenancyv1alpha1.TenantLabel + "=" + owner))
		Eventually(func(g Gomega) {
			g.Expect(getNamespace(g, k8sClient, namespace).Labels).NotTo(HaveKey(tenancyv1alpha1.WorkspaceLabel))
		}).Should(Succeed())
	})

	It("reports a terminating namespace", func() {
		name := uniqueName("terminating")
		namespace := name + "-ns"
		createNamespace(k8sClient, namespace, nil)
		Expect(k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())

		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}))
		Eventually(func(g Gomega) {
			ws := &tenancyv1alpha1.Workspace{}
			g.Expect(k8sClient.Get(ctx, keyOf("", name), ws)).To(Succeed())
			found := findCondition(ws, tenancyv1alpha1.NamespacesReadyCondition)
			g.Expect(found).NotTo(BeNil())
			g.Expect(found.Reason).To(Equal(tenancyv1alpha1.NamespaceTerminatingReason))
			g.Expect(ws.Status.Namespaces).To(ContainElement(HaveField("State", tenancyv1alpha1.NamespaceStateTerminating)))
		}).Should(Succeed())
	})
})
