package webhookconfig

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	policycontrollers "github.com/trusted-delivery/trusted-delivery/controllers/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/admission"
	"github.com/trusted-delivery/trusted-delivery/internal/certs"
	"github.com/trusted-delivery/trusted-delivery/internal/events"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
	"github.com/trusted-delivery/trusted-delivery/internal/validation/pac"
	tenancyvalidation "github.com/trusted-delivery/trusted-delivery/internal/validation/tenancy"
)

// The suite runs the manager as `--webhook-host` does: the webhook server
// listens on 127.0.0.1, the certificate rotator issues its certificate for
// localhost, and the reconciler writes configurations whose URLs point the
// real kube-apiserver at https://localhost:<port>. Every admission in the
// specs goes through the API server to the webhook over TLS.

const operatorNamespace = "trusted-delivery-system"

var (
	env *envtest.Environment
	// k8sClient is an admin client; warnings holds what the API server
	// returned to it as warnings.
	k8sClient client.Client
	warnings  *warningCollector
	// restConfig is the admin configuration, for clients that impersonate.
	restConfig *rest.Config
	engine     *policy.Engine
	options    Options
	readyz     healthz.Checker
	ctx        context.Context
	cancel     context.CancelFunc
)

func TestWebhookConfigurations(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Webhook configurations and enforcement suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Generous because CI machines have 2 cores shared by several test
	// packages; Eventually returns as soon as the check passes.
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())
	restConfig = cfg

	scheme := kube.NewScheme()
	// The specs create CRDs.
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	warnings = &warningCollector{}
	warnConfig := rest.CopyConfig(cfg)
	warnConfig.WarningHandlerWithContext = warnings
	k8sClient, err = client.New(warnConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())

	// The manager has its own user, as it has its own ServiceAccount in a
	// cluster.
	managerUser, err := env.ControlPlane.AddUser(envtest.User{
		Name:   "trusted-delivery-manager",
		Groups: []string{"system:masters"},
	}, nil)
	Expect(err).NotTo(HaveOccurred())

	port := freePort()
	options = Options{
		Namespace:          operatorNamespace,
		ExcludedNamespaces: "excluded-by-flag",
		WebhookHost:        "127.0.0.1",
		WebhookPort:        port,
	}
	Expect(options.Validate()).To(Succeed())

	certDir := GinkgoT().TempDir()
	certificates, err := certs.New(options.CertificateOptions(certDir))
	Expect(err).NotTo(HaveOccurred())
	server := webhook.NewServer(webhook.Options{
		Host:    options.WebhookHost,
		Port:    port,
		CertDir: certDir,
		TLSOpts: []func(*tls.Config){certificates.ConfigureTLS},
	})
	mgr, err := ctrl.NewManager(managerUser.Config(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          server,
	})
	Expect(err).NotTo(HaveOccurred())

	Expect(certificates.SetupWithManager(ctx, mgr)).To(Succeed())
	// A short policy deadline keeps the slow policy spec fast.
	engine = policy.NewEngine(policy.Options{Timeout: time.Second})
	Expect(policycontrollers.Setup(mgr, engine)).To(Succeed())

	recorder := events.NewRecorder(mgr.GetClient(), mgr.GetAPIReader(), events.Options{
		Component:     "trusted-delivery-admission",
		FlushInterval: 200 * time.Millisecond,
	})
	enforcer := &admission.Enforcer{
		Engine:             engine,
		Namespaces:         mgr.GetClient(),
		Events:             recorder,
		ExcludedNamespaces: options.Excluded(),
		OperatorUsername:   options.OperatorUsername(),
	}
	Expect(enforcer.SetupWithManager(mgr)).To(Succeed())
	server.Register(pac.PolicyPath, &webhook.Admission{Handler: pac.NewPolicyValidator(scheme)})
	server.Register(pac.PolicyConfigPath, &webhook.Admission{Handler: pac.NewPolicyConfigValidator(scheme, mgr.GetClient())})
	Expect(tenancyvalidation.NewWorkspaceValidator(mgr.GetClient(), scheme, nil).SetupWithManager(mgr)).To(Succeed())

	Expect((&Reconciler{Certificates: certificates, Options: options}).SetupWithManager(mgr)).To(Succeed())
	readyz = ReadyChecker(certificates, server, engine)

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(func() error { return readyz(nil) }).Should(Succeed(), "the webhook server becomes ready")
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() int {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

// warningCollector keeps the warnings that the API server returns.
type warningCollector struct {
	mu    sync.Mutex
	texts []string
}

func (w *warningCollector) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, text string) {
	if code != 299 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.texts = append(w.texts, text)
}

// containing returns the collected warnings that contain s.
func (w *warningCollector) containing(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found []string
	for _, text := range w.texts {
		if strings.Contains(text, s) {
			found = append(found, text)
		}
	}
	return found
}

// uniqueName returns a name that no other spec uses.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// createNamespace creates a namespace for one spec and deletes it after.
func createNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("enforce")}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ns))).To(Succeed())
	})
	return ns.Name
}

// deployment returns a Deployment with the replicas.
func deployment(namespace, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.example/app:1.0.0",
				}}},
			},
		},
	}
}

// mustCreate creates obj and deletes it when the spec ends.
func mustCreate(obj client.Object, opts ...client.CreateOption) {
	Expect(k8sClient.Create(ctx, obj, opts...)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, obj))).To(Succeed())
	})
}

// violationEvents returns the PolicyViolation Events about the named
// object in the namespace.
func violationEvents(g Gomega, namespace, name string) []corev1.Event {
	list := &corev1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	var found []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == events.ReasonPolicyViolation {
			found = append(found, e)
		}
	}
	return found
}

func describe(obj client.Object) string {
	return fmt.Sprintf("%T %s/%s", obj, obj.GetNamespace(), obj.GetName())
}
