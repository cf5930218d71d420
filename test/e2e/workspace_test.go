//go:build e2e

package e2e

import (
	"context"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/controllers/workspace"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/test/e2e/framework"
)

// configMapManifest is a ConfigMap without a namespace, or in namespace when
// it is not empty.
func configMapManifest(name, namespace string) string {
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
	if namespace != "" {
		manifest += "  namespace: " + namespace + "\n"
	}
	return manifest + "data:\n  owner: tenant\n"
}

// tenantWorkspace returns a Workspace with one namespace whose ServiceAccount
// may manage ConfigMaps there and nothing else.
//
// NOTE: envtest runs no kube-controller-manager, so the aggregated
// ClusterRoles (admin, edit, view) have no rules, and binding the default
// admin would grant nothing. Rules make the grant explicit.
func tenantWorkspace(name string) *tenancyv1alpha1.Workspace {
	return &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			Namespaces: []string{name + "-apps"},
			DeploymentRBAC: &tenancyv1alpha1.DeploymentRBAC{
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""},
					Resources: []string{"configmaps"},
					Verbs:     []string{"*"},
				}},
			},
		},
	}
}

func tenantKustomization(namespace, name, targetNamespace string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: eventuallyTimeout},
			RetryInterval:   &metav1.Duration{Duration: 5 * time.Second},
			Path:            "./",
			Prune:           true,
			TargetNamespace: targetNamespace,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{
				Kind: sourcev1.GitRepositoryKind,
				Name: name,
			},
		},
	}
}

var _ = Describe("Workspace tenancy with kustomize-controller", Ordered, func() {
	var tenantA, tenantB string

	BeforeAll(func() {
		By("starting the Workspace reconciler")
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                 kube.NewScheme(),
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect((&workspace.WorkspaceReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())
		managerCtx, stopManager := context.WithCancel(ctx)
		DeferCleanup(stopManager)
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(managerCtx)).To(Succeed())
		}()

		By("creating two tenants")
		suffix := rand.String(5)
		tenantA, tenantB = "tenant-a-"+suffix, "tenant-b-"+suffix
		for _, name := range []string{tenantA, tenantB} {
			Expect(k8sClient.Create(ctx, tenantWorkspace(name))).To(Succeed())
		}
		for _, name := range []string{tenantA, tenantB} {
			Eventually(func(g Gomega) {
				ws := &tenancyv1alpha1.Workspace{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
				ready := apimeta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.ReadyCondition)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s", ready.Reason, ready.Message)
			}).Should(Succeed(), "workspace %s is ready", name)
		}
	})

	It("patches a tenant Kustomization, which applies as the tenant's ServiceAccount", func() {
		namespace := tenantA + "-apps"
		artifact, err := artifacts.ServeArtifact(map[string]string{"configmap.yaml": configMapManifest("own", "")})
		Expect(err).NotTo(HaveOccurred())
		_, err = framework.PublishGitRepository(ctx, k8sClient, namespace, "own", artifact)
		Expect(err).NotTo(HaveOccurred())

		kustomization := tenantKustomization(namespace, "own", namespace)
		Expect(kustomization.Spec.ServiceAccountName).To(BeEmpty())
		Expect(k8sClient.Create(ctx, kustomization)).To(Succeed())

		Eventually(func(g Gomega) {
			current := &kustomizev1.Kustomization{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(kustomization), current)).To(Succeed())
			g.Expect(current.Spec.ServiceAccountName).To(Equal(tenantA))
		}).Should(Succeed(), "the operator sets spec.serviceAccountName")

		Eventually(func(g Gomega) {
			configMap := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "own"}, configMap)).To(Succeed())
			g.Expect(configMap.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", "own"))
		}).Should(Succeed(), "kustomize-controller applies the ConfigMap in the tenant's namespace")

		Eventually(func(g Gomega) {
			current := &kustomizev1.Kustomization{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(kustomization), current)).To(Succeed())
			g.Expect(framework.CheckReady(current)).To(Succeed())
		}).Should(Succeed())
	})

	It("fails with a forbidden error when the manifests target another tenant's namespace", func() {
		namespace, foreign := tenantA+"-apps", tenantB+"-apps"
		artifact, err := artifacts.ServeArtifact(map[string]string{"configmap.yaml": configMapManifest("intruder", foreign)})
		Expect(err).NotTo(HaveOccurred())
		_, err = framework.PublishGitRepository(ctx, k8sClient, namespace, "intruder", artifact)
		Expect(err).NotTo(HaveOccurred())

		// No targetNamespace, so the manifest's own namespace stays.
		kustomization := tenantKustomization(namespace, "intruder", "")
		Expect(k8sClient.Create(ctx, kustomization)).To(Succeed())

		Eventually(func(g Gomega) {
			current := &kustomizev1.Kustomization{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(kustomization), current)).To(Succeed())
			g.Expect(current.Spec.ServiceAccountName).To(Equal(tenantA))
			ready := apimeta.FindStatusCondition(current.Status.Conditions, meta.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Message).To(ContainSubstring("forbidden"))
			g.Expect(ready.Message).To(ContainSubstring("system:serviceaccount:" + namespace + ":" + tenantA))
		}).Should(Succeed(), "kustomize-controller reports the denial of the impersonated ServiceAccount")

		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: foreign, Name: "intruder"}, &corev1.ConfigMap{})).
			To(MatchError(ContainSubstring("not found")), "nothing reached the other tenant's namespace")
	})
})
