package workspace

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

var _ = Describe("Workspace reconciler", func() {
	It("creates namespaces, ServiceAccounts, RoleBindings and policies", func() {
		name := uniqueName("create")
		namespaces := []string{name + "-dev", name + "-prod"}
		createWorkspace(k8sClient, newWorkspace(name, namespaces, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.Labels = map[string]tenancyv1alpha1.LabelValue{"cost-center": "4711"}
			ws.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{Groups: []string{name + "-devs"}, ClusterRole: "view"}
		}))
		expectReady(k8sClient, name)

		ws := getWorkspace(k8sClient, name)
		Expect(ws.Finalizers).To(ContainElement(tenancyv1alpha1.Finalizer))
		Expect(ws.Status.NamespaceCount).To(Equal(int32(2)))
		Expect(ws.Status.Namespaces).To(ConsistOf(
			tenancyv1alpha1.NamespaceStatus{Name: namespaces[0], State: tenancyv1alpha1.NamespaceStateReady},
			tenancyv1alpha1.NamespaceStatus{Name: namespaces[1], State: tenancyv1alpha1.NamespaceStateReady},
		))
		Expect(ws.Status.Policies).To(ConsistOf(
			tenancy.PolicyID(name, tenancy.AllowedClustersPolicy),
			tenancy.PolicyID(name, tenancy.ServiceAccountAndNamespacesPolicy),
		))

		for _, namespace := range namespaces {
			By("checking namespace " + namespace)
			ns := &corev1.Namespace{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: namespace}, ns)).To(Succeed())
			Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.TenantLabel, name))
			Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.WorkspaceLabel, name))
			Expect(ns.Labels).To(HaveKeyWithValue(tenancyv1alpha1.ManagedByLabel, tenancyv1alpha1.ManagedByValue))
			Expect(ns.Labels).To(HaveKeyWithValue("cost-center", "4711"))
			Expect(ns.OwnerReferences).To(BeEmpty(), "namespaces carry labels, not owner references")

			sa := &corev1.ServiceAccount{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sa)).To(Succeed())
			Expect(metav1.IsControlledBy(sa, ws)).To(BeTrue(), "the Workspace controls the ServiceAccount")

			binding := &rbacv1.RoleBinding{}
			key := client.ObjectKey{Namespace: namespace, Name: name + "-deployment-clusterrole"}
			Expect(k8sClient.Get(ctx, key, binding)).To(Succeed())
			Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"}))
			Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: namespace}))
			Expect(metav1.IsControlledBy(binding, ws)).To(BeTrue())

			team := &rbacv1.RoleBinding{}
			key = client.ObjectKey{Namespace: namespace, Name: name + "-team-clusterrole"}
			Expect(k8sClient.Get(ctx, key, team)).To(Succeed())
			Expect(team.RoleRef.Name).To(Equal("view"))
			Expect(team.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: name + "-devs"}))
		}

		policy := &pacv2beta3.Policy{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: tenancy.PolicyID(name, tenancy.ServiceAccountAndNamespacesPolicy)}, policy)).To(Succeed())
		Expect(policy.Spec.Targets.Namespaces).To(ConsistOf(namespaces))
		Expect(metav1.IsControlledBy(policy, ws)).To(BeTrue())
		Eventually(func(g Gomega) {
			var notes []string
			for _, e := range eventsAbout(g, k8sClient, "Workspace", name) {
				if e.Reason == reasonNamespaceCreated {
					notes = append(notes, e.Note)
				}
			}
			g.Expect(notes).To(ConsistOf("created namespace "+namespaces[0], "created namespace "+namespaces[1]))
		}).Should(Succeed(), "one NamespaceCreated Event per namespace")
	})

	It("restores a deleted RoleBinding", func() {
		name := uniqueName("drift")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}))
		expectReady(k8sClient, name)

		key := client.ObjectKey{Namespace: namespace, Name: name + "-deployment-clusterrole"}
		binding := &rbacv1.RoleBinding{}
		Expect(k8sClient.Get(ctx, key, binding)).To(Succeed())
		oldUID := binding.UID
		Expect(k8sClient.Delete(ctx, binding)).To(Succeed())

		Eventually(func(g Gomega) {
			restored := &rbacv1.RoleBinding{}
			g.Expect(k8sClient.Get(ctx, key, restored)).To(Succeed())
			g.Expect(restored.UID).NotTo(Equal(oldUID), "a new RoleBinding")
			g.Expect(restored.RoleRef.Name).To(Equal("admin"))
		}).Should(Succeed())
		expectEvent(k8sClient, "Workspace", name, corev1.EventTypeNormal, reasonObjectsApplied)
	})

	It("prunes the objects of a namespace removed from the spec", func() {
		name := uniqueName("prune")
		kept, removed := name+"-kept", name+"-removed"
		createWorkspace(k8sClient, newWorkspace(name, []string{kept, removed}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.ResourceQuota = &corev1.ResourceQuotaSpec{
				Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")},
			}
		}))
		expectReady(k8sClient, name)
		quotaKey := client.ObjectKey{Namespace: removed, Name: name}
		Expect(k8sClient.Get(ctx, quotaKey, &corev1.ResourceQuota{})).To(Succeed())

		By("removing a namespace from the spec")
		ws := getWorkspace(k8sClient, name)
		ws.Spec.Namespaces = []string{kept}
		Expect(k8sClient.Update(ctx, ws)).To(Succeed())
		expectReady(k8sClient, name)

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, quotaKey, &corev1.ResourceQuota{})).To(MatchError(ContainSubstring("not found")))
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: removed, Name: name}, &corev1.ServiceAccount{})).
				To(MatchError(ContainSubstring("not found")))
			binding := client.ObjectKey{Namespace: removed, Name: name + "-deployment-clusterrole"}
			g.Expect(k8sClient.Get(ctx, binding, &rbacv1.RoleBinding{})).To(MatchError(ContainSubstring("not found")))
		}).Should(Succeed(), "the removed namespace's objects are pruned")

		By("checking that the removed namespace is orphaned, not deleted")
		Eventually(func(g Gomega) {
			ns := getNamespace(g, k8sClient, removed)
			g.Expect(ns.DeletionTimestamp).To(BeNil())
			g.Expect(ns.Labels).NotTo(HaveKey(tenancyv1alpha1.TenantLabel))
			g.Expect(ns.Labels).NotTo(HaveKey(tenancyv1alpha1.WorkspaceLabel))
		}).Should(Succeed())

		By("checking that the kept namespace is untouched")
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: kept, Name: name}, &corev1.ResourceQuota{})).To(Succeed())
		policy := &pacv2beta3.Policy{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: tenancy.PolicyID(name, tenancy.AllowedClustersPolicy)}, policy)).To(Succeed())
		Expect(policy.Spec.Targets.Namespaces).To(ConsistOf(kept))
		expectEvent(k8sClient, "Workspace", name, corev1.EventTypeNormal, reasonNamespaceReleased)
	})

	It("deletes the allowed-repositories policy when the list becomes empty", func() {
		name := uniqueName("repos")
		createWorkspace(k8sClient, newWorkspace(name, []string{name + "-apps"}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.AllowedRepositories = []tenancyv1alpha1.AllowedRepository{
				{Kind: "GitRepository", URL: "https://github.com/example/" + name},
			}
		}))
		expectReady(k8sClient, name)
		key := client.ObjectKey{Name: tenancy.PolicyID(name, tenancy.AllowedRepositoriesPolicy)}
		Expect(k8sClient.Get(ctx, key, &pacv2beta3.Policy{})).To(Succeed())

		ws := getWorkspace(k8sClient, name)
		ws.Spec.AllowedRepositories = nil
		Expect(k8sClient.Update(ctx, ws)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, &pacv2beta3.Policy{})).To(MatchError(ContainSubstring("not found")))
		}).Should(Succeed())
	})
})
