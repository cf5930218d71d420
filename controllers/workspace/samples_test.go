package workspace

import (
	"os"
	"path/filepath"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

func readSample(name string, into any) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", name))
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.UnmarshalStrict(data, into)).To(Succeed(), "sample %s", name)
}

var _ = Describe("Samples", func() {
	It("makes the sample Workspace ready and patches the sample Kustomization", func() {
		ws := &tenancyv1alpha1.Workspace{}
		readSample("tenancy_v1alpha1_workspace.yaml", ws)
		kustomization := &kustomizev1.Kustomization{}
		readSample("flux_kustomization.yaml", kustomization)
		Expect(ws.Spec.Namespaces).To(ContainElement(kustomization.Namespace))

		createWorkspace(k8sClient, ws)
		expectReady(k8sClient, ws.Name)
		createFluxObject(k8sClient, kustomization)
		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, k8sClient, kustomization.Namespace, kustomization.Name)).
				To(Equal(ws.Name))
		}).Should(Succeed())
		expectReady(k8sClient, ws.Name)
	})
})
