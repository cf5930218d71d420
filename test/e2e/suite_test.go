//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
	"github.com/trusted-delivery/trusted-delivery/test/e2e/framework"
)

// Timeouts of Eventually. kustomize-controller reconciles within seconds, but
// the suite shares 2 cores with the API server, etcd and other test packages.
const (
	eventuallyTimeout  = 2 * time.Minute
	eventuallyInterval = 250 * time.Millisecond
)

var (
	env       *envtest.Environment
	k8sClient client.Client
	artifacts *framework.ArtifactServer

	// ctx lives for the whole suite, because the child processes started
	// with it stop when it is cancelled.
	ctx    context.Context
	cancel context.CancelFunc

	stopKustomizeController func()
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(eventuallyTimeout)
	SetDefaultEventuallyPollingInterval(eventuallyInterval)
	ctx, cancel = context.WithCancel(context.Background())

	By("starting the control plane with the Flux CRDs")
	env = testenv.New(testenv.Options{WithFluxCRDs: true})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	Expect(err).NotTo(HaveOccurred())

	By("starting kustomize-controller")
	kubeconfig := filepath.Join(GinkgoT().TempDir(), "kustomize-controller.kubeconfig")
	controllerUser := envtest.User{Name: "kustomize-controller", Groups: []string{"system:masters"}}
	Expect(framework.WriteKubeconfig(env, controllerUser, kubeconfig)).To(Succeed())
	stopKustomizeController, err = framework.StartKustomizeController(ctx, kubeconfig,
		framework.KustomizeControllerOptions{Output: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())

	artifacts = framework.NewArtifactServer()
})

var _ = AfterSuite(func() {
	if stopKustomizeController != nil {
		stopKustomizeController()
	}
	if artifacts != nil {
		artifacts.Close()
	}
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
