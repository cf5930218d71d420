package workspace

import (
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// holdFinalizer keeps a Kustomization in place after its deletion, as Flux's
// own finalizer does while kustomize-controller prunes.
const holdFinalizer = "test.trusted-delivery.io/hold"

func expectGone(name string) {
	Eventually(func(g Gomega) {
		err := k8sClient.Get(ctx, keyOf("", name), &tenancyv1alpha1.Workspace{})
		g.Expect(err).To(MatchError(ContainSubstring("not found")))
	}).Should(Succeed(), "workspace %s is gone", name)
}

var _ = Describe("Workspace deletion", func() {
	It("waits for the Flux objects before it removes the RBAC", func() {
		name := uniqueName("order")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}))
		expectReady(k8sClient, name)

		kustomization := newKustomization(namespace, "app", "")
		kustomization.Finalizers = []string{holdFinalizer}
		createFluxObject(k8sClient, kustomization)
		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, namespace, "app")).To(Equal(name))
		}).Should(Succeed())

		By("deleting the Workspace")
		Expect(k8sClient.Delete(ctx, getWorkspace(k8sClient, name))).To(Succeed())
		flux := expectCondition(k8sClient, name, tenancyv1alpha1.FluxImpersonationCondition,
			metav1.ConditionFalse, tenancyv1alpha1.WaitingForFluxObjectsReason)
		Expect(flux.Message).To(ContainSubstring("Kustomization " + namespace + "/app"))
		expectCondition(k8sClient, name, tenancyv1alpha1.ReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.DeletingReason)
		bindingKey := keyOf(namespace, name+"-deployment-clusterrole")
		Expect(k8sClient.Get(ctx, bindingKey, &rbacv1.RoleBinding{})).To(Succeed(), "the RoleBinding stays while Flux needs it")

		By("deleting the Kustomization, which its finalizer keeps")
		Expect(k8sClient.Delete(ctx, kustomization)).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, bindingKey, &rbacv1.RoleBinding{})).To(Succeed())
			g.Expect(k8sClient.Get(ctx, keyOf(namespace, name), &corev1.ServiceAccount{})).To(Succeed())
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed(), "RBAC stays while the Kustomization is being finalized")

		By("removing the Kustomization's finalizer")
		current := &kustomizev1.Kustomization{}
		Expect(k8sClient.Get(ctx, keyOf(namespace, "app"), current)).To(Succeed())
		current.Finalizers = nil
		Expect(k8sClient.Update(ctx, current)).To(Succeed())

		expectGone(name)
		Expect(k8sClient.Get(ctx, bindingKey, &rbacv1.RoleBinding{})).To(MatchError(ContainSubstring("not found")))
		Expect(k8sClient.Get(ctx, keyOf(namespace, name), &corev1.ServiceAccount{})).To(MatchError(ContainSubstring("not found")))
		Expect(k8sClient.Get(ctx, keyOf("", tenancy.PolicyID(name, tenancy.AllowedClustersPolicy)), &pacv2beta3.Policy{})).
			To(MatchError(ContainSubstring("not found")))
	})

	It("keeps the namespaces without the tenant label with deletionPolicy Orphan", func() {
		name := uniqueName("orphan")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.Labels = map[string]tenancyv1alpha1.LabelValue{"cost-center": "4711"}
		}))
		expectReady(k8sClient, name)

		Expect(k8sClient.Delete(ctx, getWorkspace(k8sClient, name))).To(Succeed())
		expectGone(name)
		ns := getNamespace(Default, k8sClient, namespace)
		Expect(ns.DeletionTimestamp).To(BeNil())
		Expect(ns.Labels).NotTo(HaveKey(tenancyv1alpha1.TenantLabel))
		Expect(ns.Labels).NotTo(HaveKey(tenancyv1alpha1.WorkspaceLabel))
		Expect(ns.Labels).NotTo(HaveKey(tenancyv1alpha1.ManagedByLabel))
		Expect(ns.Labels).NotTo(HaveKey("cost-center"))
	})

	It("deletes the namespaces with deletionPolicy Delete", func() {
		name := uniqueName("delete")
		namespace, foreign := name+"-apps", name+"-foreign"
		createNamespace(k8sClient, foreign, nil)
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.DeletionPolicy = tenancyv1alpha1.DeletionPolicyDelete
		}))
		expectReady(k8sClient, name)
		kustomization := newKustomization(namespace, "app", "")
		createFluxObject(k8sClient, kustomization)

		Expect(k8sClient.Delete(ctx, getWorkspace(k8sClient, name))).To(Succeed())
		expectGone(name)
		Expect(k8sClient.Get(ctx, keyOf(namespace, "app"), &kustomizev1.Kustomization{})).
			To(MatchError(ContainSubstring("not found")), "deletionPolicy Delete deletes the Flux objects first")
		// envtest runs no namespace controller, so a deleted namespace stays
		// Terminating.
		ns := getNamespace(Default, k8sClient, namespace)
		Expect(ns.DeletionTimestamp).NotTo(BeNil())
		Expect(getNamespace(Default, k8sClient, foreign).DeletionTimestamp).To(BeNil(), "a namespace it never held stays")
	})
})
