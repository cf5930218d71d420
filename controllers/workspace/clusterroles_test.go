package workspace

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

var _ = Describe("ClusterRole allow-list", func() {
	clusterAdmin := func(ws *tenancyv1alpha1.Workspace) {
		ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{ClusterRole: "cluster-admin"}
	}

	It("rejects a disallowed ClusterRole in the webhook", func() {
		name := uniqueName("admin")
		err := k8sClient.Create(ctx, newWorkspace(name, []string{name + "-apps"}, clusterAdmin))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.deploymentRBAC.clusterRole"))
		Expect(err.Error()).To(ContainSubstring(`Unsupported value: "cluster-admin"`))
	})

	It("reports a disallowed ClusterRole and creates nothing", func() {
		name := uniqueName("admin")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}, clusterAdmin, skipValidation))

		rbac := expectCondition(k8sClient, name, tenancyv1alpha1.RBACReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.ClusterRoleNotAllowedReason)
		Expect(rbac.Message).To(ContainSubstring(`spec.deploymentRBAC.clusterRole: ClusterRole "cluster-admin" is not allowed`))
		expectCondition(k8sClient, name, tenancyv1alpha1.ReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.ClusterRoleNotAllowedReason)
		expectEvent(k8sClient, "Workspace", name, corev1.EventTypeWarning, tenancyv1alpha1.ClusterRoleNotAllowedReason)
		// The status is written at the end of the pass that stopped before
		// the namespaces phase, so nothing can exist once it is visible.
		Expect(k8sClient.Get(ctx, keyOf("", namespace), &corev1.Namespace{})).To(MatchError(ContainSubstring("not found")))

		By("allowing the Workspace by changing the spec")
		ws := getWorkspace(k8sClient, name)
		ws.Spec.DeploymentRBAC.ClusterRole = "edit"
		Expect(k8sClient.Update(ctx, ws)).To(Succeed())
		expectReady(k8sClient, name)
		binding := &rbacv1.RoleBinding{}
		Expect(k8sClient.Get(ctx, keyOf(namespace, name+"-deployment-clusterrole"), binding)).To(Succeed())
		Expect(binding.RoleRef.Name).To(Equal("edit"))
	})

	It("waits for an allowed ClusterRole that does not exist yet", func() {
		name := uniqueName("missing")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{ClusterRole: missingClusterRole}
		}))

		Eventually(func(g Gomega) {
			ws := &tenancyv1alpha1.Workspace{}
			g.Expect(k8sClient.Get(ctx, keyOf("", name), ws)).To(Succeed())
			rbac := findCondition(ws, tenancyv1alpha1.RBACReadyCondition)
			g.Expect(rbac).NotTo(BeNil())
			g.Expect(rbac.Reason).To(Equal(tenancyv1alpha1.ClusterRoleNotFoundReason))
			g.Expect(rbac.Message).To(ContainSubstring("ClusterRole " + missingClusterRole + " not found"))
		}).Should(Succeed())
		expectEvent(k8sClient, "Workspace", name, corev1.EventTypeWarning, tenancyv1alpha1.ClusterRoleNotFoundReason)
		Expect(k8sClient.Get(ctx, keyOf(namespace, name+"-deployment-clusterrole"), &rbacv1.RoleBinding{})).
			To(Succeed(), "the RoleBinding exists and grants nothing until the ClusterRole does")

		By("creating the ClusterRole")
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: missingClusterRole},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"},
			}},
		}
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, role))).To(Succeed())
		})
		expectReady(k8sClient, name)
	})
})
