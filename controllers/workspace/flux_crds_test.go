package workspace

import (
	"context"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// This spec needs a control plane without the Flux CRDs, so it starts a
// second one with its own manager.
var _ = Describe("Flux CRDs installed after the manager started", Ordered, func() {
	var (
		lateConfig *rest.Config
		lateClient client.Client
	)

	BeforeAll(func() {
		lateEnv := testenv.New(testenv.Options{})
		var err error
		lateConfig, err = testenv.Start(lateEnv)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			Expect(lateEnv.Stop()).To(Succeed())
		})
		lateClient, err = client.New(lateConfig, client.Options{Scheme: kube.NewScheme()})
		Expect(err).NotTo(HaveOccurred())

		managerCtx, stopManager := context.WithCancel(ctx)
		DeferCleanup(stopManager)
		startManager(managerCtx, lateConfig, nil)
	})

	It("starts setting the ServiceAccount once the CRDs are installed", func() {
		name := uniqueName("late")
		namespace := name + "-apps"
		createWorkspace(lateClient, newWorkspace(name, []string{namespace}))
		flux := expectCondition(lateClient, name, tenancyv1alpha1.FluxImpersonationCondition,
			metav1.ConditionFalse, tenancyv1alpha1.FluxNotInstalledReason)
		Expect(flux.Message).To(ContainSubstring("CRDs are not installed"))
		expectCondition(lateClient, name, tenancyv1alpha1.ReadyCondition,
			metav1.ConditionFalse, tenancyv1alpha1.FluxNotInstalledReason)

		By("installing the Flux CRDs")
		_, err := envtest.InstallCRDs(lateConfig, envtest.CRDInstallOptions{
			Paths:              []string{filepath.Join(testenv.RepoRoot(), "test", "crds", "flux")},
			ErrorIfPathMissing: true,
		})
		Expect(err).NotTo(HaveOccurred())
		expectReady(lateClient, name)

		By("creating a Kustomization without a ServiceAccount")
		createFluxObject(lateClient, newKustomization(namespace, "app", ""))
		Eventually(func(g Gomega) {
			g.Expect(kustomizationServiceAccount(g, lateClient, namespace, "app")).To(Equal(name))
		}).Should(Succeed())
	})
})
