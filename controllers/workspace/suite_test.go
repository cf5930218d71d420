package workspace

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
	tenancyvalidation "github.com/trusted-delivery/trusted-delivery/internal/validation/tenancy"
)

// The suite runs the Workspace reconciler and the /validate/workspace
// webhook against a real API server with the Flux CRDs. Workspaces with
// skipValidationLabel bypass the webhook, so that specs can create what the
// webhook would reject and check how the reconciler copes with it.

const (
	// skipValidationLabel on a Workspace keeps it away from the webhook in
	// this suite only, through the webhook's objectSelector.
	skipValidationLabel = "test.trusted-delivery.io/skip-validation"

	// missingClusterRole is allowed but not created by the control plane,
	// so a spec can bind it before it exists.
	missingClusterRole = "td-test-deployer"
)

var (
	env       *envtest.Environment
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestWorkspaceController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Workspace controller suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Generous because CI machines have 2 cores shared by several test
	// packages; Eventually returns as soon as the check passes.
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{
		WithFluxCRDs: true,
		Webhooks: envtest.WebhookInstallOptions{
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{workspaceWebhook()},
		},
	})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())

	k8sClient, err = client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	Expect(err).NotTo(HaveOccurred())

	opts := env.WebhookInstallOptions
	startManager(ctx, cfg, webhook.NewServer(webhook.Options{
		Host:    opts.LocalServingHost,
		Port:    opts.LocalServingPort,
		CertDir: opts.LocalServingCertDir,
	}))
	waitForWebhookServer(net.JoinHostPort(opts.LocalServingHost, fmt.Sprint(opts.LocalServingPort)))
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// startManager starts a manager with the Workspace reconciler, and the
// webhook when server is not nil, until runCtx ends.
func startManager(runCtx context.Context, cfg *rest.Config, server webhook.Server) {
	scheme := kube.NewScheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          server,
		// Two specs run a manager each, and controller names are unique
		// per process otherwise.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())

	allowed := []string{"admin", "edit", "view", missingClusterRole}
	reconciler := &WorkspaceReconciler{Client: mgr.GetClient(), AllowedClusterRoles: allowed}
	Expect(reconciler.SetupWithManager(mgr)).To(Succeed())
	if server != nil {
		validator := tenancyvalidation.NewWorkspaceValidator(mgr.GetClient(), scheme, allowed)
		Expect(validator.SetupWithManager(mgr)).To(Succeed())
	}

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(runCtx)).To(Succeed())
	}()
}

// workspaceWebhook is the validating webhook configuration of Workspaces;
// envtest points its service reference at the local webhook server.
func workspaceWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "trusted-delivery-workspace-validation"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "workspaces.tenancy.weave.works",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{
					Name:      "trusted-delivery-webhook",
					Namespace: "trusted-delivery-system",
					Path:      ptr.To(tenancyvalidation.WorkspacePath),
				},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{
					admissionregistrationv1.Create, admissionregistrationv1.Update,
				},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{tenancyv1alpha1.GroupVersion.Group},
					APIVersions: []string{tenancyv1alpha1.GroupVersion.Version},
					Resources:   []string{"workspaces"},
					Scope:       ptr.To(admissionregistrationv1.ClusterScope),
				},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key:      skipValidationLabel,
				Operator: metav1.LabelSelectorOpDoesNotExist,
			}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
}

func waitForWebhookServer(address string) {
	Eventually(func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", address,
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that the test server listens
		if err != nil {
			return err
		}
		return conn.Close()
	}).Should(Succeed(), "the webhook server listens")
}

// uniqueName returns a name that no other spec uses.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// newWorkspace returns a Workspace with the namespaces; mutate adjusts it.
func newWorkspace(name string, namespaces []string, mutate ...func(*tenancyv1alpha1.Workspace)) *tenancyv1alpha1.Workspace {
	ws := &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Namespaces: namespaces},
	}
	for _, m := range mutate {
		m(ws)
	}
	return ws
}

// skipValidation keeps the Workspace away from the webhook.
func skipValidation(ws *tenancyv1alpha1.Workspace) {
	if ws.Labels == nil {
		ws.Labels = map[string]string{}
	}
	ws.Labels[skipValidationLabel] = "true"
}

// createWorkspace creates the Workspace with c and deletes it when the spec
// ends, waiting until its finalizer is done.
func createWorkspace(c client.Client, ws *tenancyv1alpha1.Workspace) *tenancyv1alpha1.Workspace {
	Expect(c.Create(ctx, ws)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(c.Delete(ctx, ws))).To(Succeed())
		Eventually(func(g Gomega) {
			err := c.Get(ctx, client.ObjectKeyFromObject(ws), &tenancyv1alpha1.Workspace{})
			g.Expect(err).To(MatchError(ContainSubstring("not found")))
		}).Should(Succeed(), "workspace %s is finalized", ws.Name)
	})
	return ws
}

// workspaceCondition gets the Workspace with c and returns its condition of
// condType once the reconciler has handled the current generation, failing
// g otherwise. It also checks that Ready is the first condition.
func workspaceCondition(g Gomega, c client.Client, name, condType string) *metav1.Condition {
	ws := &tenancyv1alpha1.Workspace{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
	g.Expect(ws.Status.ObservedGeneration).To(Equal(ws.Generation), "observedGeneration")
	g.Expect(ws.Status.Conditions).NotTo(BeEmpty())
	g.Expect(ws.Status.Conditions[0].Type).To(Equal(tenancyv1alpha1.ReadyCondition), "Ready is the first condition")
	found := meta.FindStatusCondition(ws.Status.Conditions, condType)
	g.Expect(found).NotTo(BeNil(), "condition %s", condType)
	return found
}

// expectCondition waits until the Workspace's condition has the status and
// reason, and returns it.
func expectCondition(c client.Client, name, condType string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	var found *metav1.Condition
	Eventually(func(g Gomega) {
		found = workspaceCondition(g, c, name, condType)
		g.Expect(found.Status).To(Equal(status), "%s: %s", found.Reason, found.Message)
		g.Expect(found.Reason).To(Equal(reason), found.Message)
	}).Should(Succeed(), "workspace %s condition %s", name, condType)
	return found
}

// expectReady waits until the Workspace is Ready.
func expectReady(c client.Client, name string) {
	expectCondition(c, name, tenancyv1alpha1.ReadyCondition, metav1.ConditionTrue, tenancyv1alpha1.ReconciledReason)
}

// getWorkspace returns the stored Workspace.
func getWorkspace(c client.Client, name string) *tenancyv1alpha1.Workspace {
	ws := &tenancyv1alpha1.Workspace{}
	Expect(c.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
	return ws
}

// getNamespace returns the namespace, failing g when it does not exist.
func getNamespace(g Gomega, c client.Client, name string) *corev1.Namespace {
	ns := &corev1.Namespace{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
	return ns
}

// createNamespace creates a namespace for a spec; envtest never removes a
// deleted one, so it is left in place.
func createNamespace(c client.Client, name string, labels map[string]string) {
	Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
}

// eventsAbout returns the events.k8s.io Events about the object of kind
// and name.
func eventsAbout(g Gomega, c client.Client, kind, name string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.Expect(c.List(ctx, list)).To(Succeed())
	var found []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			found = append(found, e)
		}
	}
	return found
}

// expectEvent waits for an Event of the type and reason about the object.
func expectEvent(c client.Client, kind, name, eventType, reason string) {
	Eventually(func(g Gomega) {
		g.Expect(eventsAbout(g, c, kind, name)).To(ContainElement(And(
			HaveField("Type", eventType),
			HaveField("Reason", reason),
		)))
	}).Should(Succeed(), "%s event %s about %s %s", eventType, reason, kind, name)
}

// keyOf returns the key of namespace/name.
func keyOf(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

// findCondition returns the Workspace's condition of condType, or nil.
func findCondition(ws *tenancyv1alpha1.Workspace, condType string) *metav1.Condition {
	return meta.FindStatusCondition(ws.Status.Conditions, condType)
}
