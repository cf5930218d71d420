package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/controllers/workspace"
	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// The suite runs the commands that talk to a cluster against a real API
// server, with the Workspace reconciler running so that applied Workspaces
// turn into their objects.

var (
	env        *envtest.Environment
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	kubeconfig string
	scratchDir string
)

func TestClusterCommands(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "tdctl cluster commands suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Generous because CI machines have 2 cores shared by several test
	// packages; Eventually returns as soon as the check passes.
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{WithFluxCRDs: true})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	Expect(err).NotTo(HaveOccurred())

	scratchDir, err = os.MkdirTemp("", "tdctl-suite-")
	Expect(err).NotTo(HaveOccurred())
	user, err := env.AddUser(envtest.User{Name: "tdctl-test", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	data, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = filepath.Join(scratchDir, "kubeconfig")
	Expect(os.WriteFile(kubeconfig, data, 0o600)).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	reconciler := &workspace.WorkspaceReconciler{Client: mgr.GetClient()}
	Expect(reconciler.SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
	if scratchDir != "" {
		Expect(os.RemoveAll(scratchDir)).To(Succeed())
	}
})

// runCluster runs tdctl against the suite's API server.
func runCluster(stdin string, args ...string) cliResult {
	return runCLI(GinkgoT(), stdin, append(args, "--kubeconfig", kubeconfig)...)
}

// uniqueName returns a name that no other spec uses; envtest never deletes
// namespaces, so specs must not reuse them.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// writeScratchFile writes content to a new file in the suite's scratch
// directory.
func writeScratchFile(name, content string) string {
	dir, err := os.MkdirTemp(scratchDir, "spec-")
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
	return path
}

// expectWorkspaceReady waits until the Workspace reports Ready for its
// current generation.
func expectWorkspaceReady(name string) {
	Eventually(func(g Gomega) {
		ws := &tenancyv1alpha1.Workspace{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		g.Expect(ws.Status.ObservedGeneration).To(Equal(ws.Generation))
		ready := meta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
	}).Should(Succeed(), "Workspace %s is Ready", name)
}

// parseObjects parses a YAML stream into objects.
func parseObjects(name, data string) []*unstructured.Unstructured {
	docs, err := yamldoc.Parse(name, []byte(data))
	Expect(err).NotTo(HaveOccurred())
	objects := make([]*unstructured.Unstructured, 0, len(docs))
	for _, doc := range docs {
		objects = append(objects, &unstructured.Unstructured{Object: doc.Object.(map[string]any)})
	}
	return objects
}

// expectContains checks that live holds every field of want with the same
// value. Lists must have the same length. Fields that only live has, such
// as defaults and metadata the API server sets, are ignored.
func expectContains(g Gomega, live, want any, path string) {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		g.Expect(ok).To(BeTrue(), "%s is a map in the cluster", path)
		for key, value := range w {
			g.Expect(l).To(HaveKey(key), "%s.%s is set in the cluster", path, key)
			expectContains(g, l[key], value, path+"."+key)
		}
	case []any:
		l, ok := live.([]any)
		g.Expect(ok).To(BeTrue(), "%s is a list in the cluster", path)
		g.Expect(l).To(HaveLen(len(w)), "%s has the exported length", path)
		for i := range w {
			expectContains(g, l[i], w[i], path+"["+strconv.Itoa(i)+"]")
		}
	default:
		g.Expect(live).To(BeEquivalentTo(want), "%s", path)
	}
}
