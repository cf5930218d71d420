//go:build e2e

package e2e

import (
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/test/e2e/framework"
)

const smokeConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: smoke
data:
  greeting: hello
`

var _ = Describe("Flux kustomize-controller", func() {
	It("applies a ConfigMap from a published GitRepository", func() {
		namespace, err := framework.CreateNamespace(ctx, k8sClient, "flux-smoke")
		Expect(err).NotTo(HaveOccurred())

		By("publishing a tarball with one ConfigMap")
		artifact, err := artifacts.ServeArtifact(map[string]string{"configmap.yaml": smokeConfigMap})
		Expect(err).NotTo(HaveOccurred())
		_, err = framework.PublishGitRepository(ctx, k8sClient, namespace, "manifests", artifact)
		Expect(err).NotTo(HaveOccurred())

		By("creating a Kustomization for it")
		kustomization := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "smoke"},
			Spec: kustomizev1.KustomizationSpec{
				Interval:        metav1.Duration{Duration: eventuallyTimeout},
				Path:            "./",
				Prune:           true,
				TargetNamespace: namespace,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{
					Kind: sourcev1.GitRepositoryKind,
					Name: "manifests",
				},
			},
		}
		Expect(k8sClient.Create(ctx, kustomization)).To(Succeed())

		By("waiting for the ConfigMap")
		Eventually(func(g Gomega) {
			configMap := &corev1.ConfigMap{}
			key := client.ObjectKey{Namespace: namespace, Name: "smoke"}
			g.Expect(k8sClient.Get(ctx, key, configMap)).To(Succeed())
			g.Expect(configMap.Data).To(HaveKeyWithValue("greeting", "hello"))
			// The labels show that kustomize-controller applied it.
			g.Expect(configMap.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/name", "smoke"))
			g.Expect(configMap.Labels).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/namespace", namespace))
		}).Should(Succeed())

		By("waiting for the Kustomization to become Ready at the published revision")
		Eventually(func(g Gomega) {
			current := &kustomizev1.Kustomization{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(kustomization), current)).To(Succeed())
			g.Expect(framework.CheckReady(current)).To(Succeed())
			g.Expect(current.Status.LastAppliedRevision).To(Equal(artifact.Revision))
			// Inventory IDs have the form <namespace>_<name>_<group>_<kind>.
			g.Expect(current.Status.Inventory).NotTo(BeNil())
			g.Expect(current.Status.Inventory.Entries).To(ConsistOf(
				HaveField("ID", namespace+"_smoke__ConfigMap")))
		}).Should(Succeed())
	})
})
