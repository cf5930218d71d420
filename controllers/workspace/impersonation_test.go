package workspace

import (
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// newKustomization returns a Kustomization that deploys as serviceAccount,
// or as the controller's own identity when it is empty.
func newKustomization(namespace, name, serviceAccount string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:           metav1.Duration{Duration: time.Hour},
			Path:               "./",
			Prune:              true,
			ServiceAccountName: serviceAccount,
			SourceRef:          kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "app"},
		},
	}
}

func newHelmRelease(namespace, name string) *helmv2.HelmRelease {
	return &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: "app"},
		},
	}
}

// createFluxObject creates obj with c and deletes it when the spec ends,
// removing finalizers that the spec added.
func createFluxObject(c client.Client, obj client.Object) {
	Expect(c.Create(ctx, obj)).To(Succeed())
	DeferCleanup(func() {
		current := obj.DeepCopyObject().(client.Object)
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
			return
		}
		if len(current.GetFinalizers()) > 0 {
			current.SetFinalizers(nil)
			Expect(client.IgnoreNotFound(c.Update(ctx, current))).To(Succeed())
		}
		Expect(client.IgnoreNotFound(c.Delete(ctx, current))).To(Succeed())
	})
}

func kustomizationServiceAccount(g Gomega, c client.Client, namespace, name string) string {
	k := &kustomizev1.Kustomization{}
	g.Expect(c.Get(ctx, keyOf(namespace, name), k)).To(Succeed())
	return k.Spec.ServiceAccountName
}

var _ = Describe("Flux impersonation", func() {
	It("sets the ServiceAccount of Kustomizations and HelmReleases that leave it unset", func() {
		name := uniqueName("patch")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}, func(ws *tenancyv1alpha1.Workspace) {
			ws.Spec.ServiceAccountName = "deployer"
		}))
		expectReady(k8sClient, name)

		createFluxObject(k8sClient, newKustomization(namespace, "app", ""))
		createFluxObject(k8sClient, newHelmRelease(namespace, "chart"))

		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, namespace, "app")).To(Equal("deployer"))
			release := &helmv2.HelmRelease{}
			g.Expect(k8sClient.Get(ctx, keyOf(namespace, "chart"), release)).To(Succeed())
			g.Expect(release.Spec.ServiceAccountName).To(Equal("deployer"))
		}).Should(Succeed())

		By("checking that the operator's field manager owns only spec.serviceAccountName")
		k := &kustomizev1.Kustomization{}
		Expect(k8sClient.Get(ctx, keyOf(namespace, "app"), k)).To(Succeed())
		var owned []string
		for _, entry := range k.ManagedFields {
			if entry.Manager == kube.FieldManager {
				owned = append(owned, string(entry.FieldsV1.Raw))
			}
		}
		Expect(owned).To(ConsistOf(`{"f:spec":{"f:serviceAccountName":{}}}`))

		Eventually(func(g Gomega) {
			ws := &tenancyv1alpha1.Workspace{}
			g.Expect(k8sClient.Get(ctx, keyOf("", name), ws)).To(Succeed())
			g.Expect(ws.Status.FluxObjects).To(ConsistOf(
				tenancyv1alpha1.FluxObjectStatus{Kind: "HelmRelease", Namespace: namespace, Name: "chart",
					State: tenancyv1alpha1.FluxObjectStateImpersonating},
				tenancyv1alpha1.FluxObjectStatus{Kind: "Kustomization", Namespace: namespace, Name: "app",
					State: tenancyv1alpha1.FluxObjectStateImpersonating},
			))
		}).Should(Succeed())
		expectReady(k8sClient, name)
		expectEvent(k8sClient, "Kustomization", "app", corev1.EventTypeNormal, reasonServiceAccountSet)
	})

	It("reports a Kustomization that names another ServiceAccount and leaves it unchanged", func() {
		name := uniqueName("mismatch")
		namespace := name + "-apps"
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace}))
		expectReady(k8sClient, name)
		createFluxObject(k8sClient, newKustomization(namespace, "other", "platform-admin"))

		flux := expectCondition(k8sClient, name, tenancyv1alpha1.FluxImpersonationCondition,
			metav1.ConditionFalse, tenancyv1alpha1.ServiceAccountMismatchReason)
		Expect(flux.Message).To(ContainSubstring("Kustomization " + namespace + "/other uses ServiceAccount platform-admin, not " + name))
		expectCondition(k8sClient, name, tenancyv1alpha1.ReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.ServiceAccountMismatchReason)
		Expect(kustomizationServiceAccount(Default, k8sClient, namespace, "other")).To(Equal("platform-admin"))

		ws := getWorkspace(k8sClient, name)
		Expect(ws.Status.FluxObjects).To(ConsistOf(tenancyv1alpha1.FluxObjectStatus{
			Kind: "Kustomization", Namespace: namespace, Name: "other", State: tenancyv1alpha1.FluxObjectStateMismatch,
		}))
		expectEvent(k8sClient, "Workspace", name, corev1.EventTypeWarning, tenancyv1alpha1.ServiceAccountMismatchReason)
		expectEvent(k8sClient, "Kustomization", "other", corev1.EventTypeWarning, tenancyv1alpha1.ServiceAccountMismatchReason)

		By("fixing the Kustomization")
		k := &kustomizev1.Kustomization{}
		Expect(k8sClient.Get(ctx, keyOf(namespace, "other"), k)).To(Succeed())
		k.Spec.ServiceAccountName = ""
		Expect(k8sClient.Update(ctx, k)).To(Succeed())
		expectReady(k8sClient, name)
		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, namespace, "other")).To(Equal(name))
		}).Should(Succeed())
	})

	It("never touches objects in flux-system or outside the Workspace", func() {
		name := uniqueName("scope")
		namespace, outside := name+"-apps", name+"-outside"
		createNamespace(k8sClient, outside, nil)
		// The Workspace lists the Flux namespace too, which must still be
		// left alone.
		createWorkspace(k8sClient, newWorkspace(name, []string{namespace, DefaultFluxNamespace}))
		expectReady(k8sClient, name)

		createFluxObject(k8sClient, newKustomization(DefaultFluxNamespace, name, ""))
		createFluxObject(k8sClient, newKustomization(outside, "app", ""))
		// The reconcile that patches this one lists the Flux objects of every
		// namespace of the Workspace, so once it is patched the others have
		// been seen too.
		createFluxObject(k8sClient, newKustomization(namespace, "app", ""))
		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, namespace, "app")).To(Equal(name))
		}).Should(Succeed())
		expectReady(k8sClient, name)

		Expect(kustomizationServiceAccount(Default, k8sClient, DefaultFluxNamespace, name)).To(BeEmpty())
		Expect(kustomizationServiceAccount(Default, k8sClient, outside, "app")).To(BeEmpty())
		ws := getWorkspace(k8sClient, name)
		for _, o := range ws.Status.FluxObjects {
			Expect(o.Namespace).To(Equal(namespace), "status lists %s/%s", o.Namespace, o.Name)
		}
		Consistently(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, DefaultFluxNamespace, name)).To(BeEmpty())
			g.Expect(kustomizationServiceAccount(g, k8sClient, outside, "app")).To(BeEmpty())
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(strings.Join(ws.Status.Policies, ",")).NotTo(BeEmpty())
	})
})
