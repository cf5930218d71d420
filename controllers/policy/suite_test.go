package policy

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// The suite runs the three reconcilers against a real API server, without
// the validating webhook, so that invalid policies reach the reconciler.

var (
	env       *envtest.Environment
	k8sClient client.Client
	engine    *policy.Engine
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestPolicyControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Policy controllers suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Generous because CI machines have 2 cores shared by several test
	// packages; Eventually returns as soon as the check passes.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())

	scheme := kube.NewScheme()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	engine = policy.NewEngine(policy.Options{})
	Expect(Setup(mgr, engine)).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(engine.Synced).Should(BeTrue(), "the initial load marks the engine synced")
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// uniqueName returns a name that no other spec uses.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// createPolicy creates a Policy and deletes it when the spec ends.
func createPolicy(id, code string, mutate ...func(*pacv2beta3.Policy)) *pacv2beta3.Policy {
	p := &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: id},
		Spec: pacv2beta3.PolicySpec{
			Name:     "Test policy " + id,
			Severity: pacv2beta3.SeverityMedium,
			Code:     code,
		},
	}
	for _, m := range mutate {
		m(p)
	}
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
	})
	return p
}

// violationCode returns a v1 module whose violation set has one element.
func violationCode(pkg string) string {
	return "package " + pkg + "\n\nviolation contains {\"msg\": \"always\"} if true\n"
}

// readyAtGeneration gets the object and returns its Ready condition once
// the reconciler has handled the current generation, failing g otherwise.
func readyAtGeneration(g Gomega, obj client.Object, conditions func() []metav1.Condition, observed func() int64) *metav1.Condition {
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	g.Expect(observed()).To(Equal(obj.GetGeneration()), "observedGeneration")
	ready := meta.FindStatusCondition(conditions(), pacv2beta3.ReadyCondition)
	g.Expect(ready).NotTo(BeNil(), "Ready condition")
	g.Expect(conditions()[0].Type).To(Equal(pacv2beta3.ReadyCondition), "Ready is the first condition")
	return ready
}

func policyReady(g Gomega, p *pacv2beta3.Policy) *metav1.Condition {
	return readyAtGeneration(g, p,
		func() []metav1.Condition { return p.Status.Conditions },
		func() int64 { return p.Status.ObservedGeneration })
}

func configReady(g Gomega, cfg *pacv2beta3.PolicyConfig) *metav1.Condition {
	return readyAtGeneration(g, cfg,
		func() []metav1.Condition { return cfg.Status.Conditions },
		func() int64 { return cfg.Status.ObservedGeneration })
}

// eventsAbout returns the events.k8s.io Events about the named object.
func eventsAbout(g Gomega, name string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list)).To(Succeed())
	var found []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			found = append(found, e)
		}
	}
	return found
}
