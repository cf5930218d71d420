package pac

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// The suite installs both handlers in a real API server through envtest's
// WebhookInstallOptions and serves them from a controller-runtime webhook
// server, as the manager does.

var (
	env       *envtest.Environment
	k8sClient client.Client
	// kubectl runs the kubectl binary of the control plane as an admin.
	kubectl interface {
		Run(args ...string) (stdout, stderr io.Reader, err error)
	}
	ctx    context.Context
	cancel context.CancelFunc
)

func TestValidationWebhooks(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Policy validation webhooks suite")
}

// validatingWebhook returns the webhook for a resource of pac.weave.works
// served at path; envtest points the service reference at its local server.
func validatingWebhook(name, resource, path string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name: name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{
				Name:      "trusted-delivery-webhook",
				Namespace: "trusted-delivery-system",
				Path:      ptr.To(path),
			},
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{
				admissionregistrationv1.Create, admissionregistrationv1.Update,
			},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{"pac.weave.works"},
				APIVersions: []string{"v2beta2", "v2beta3"},
				Resources:   []string{resource},
				Scope:       ptr.To(admissionregistrationv1.ClusterScope),
			},
		}},
		// Exact makes the API server send the version the client used, so
		// the handlers decode both.
		MatchPolicy:             ptr.To(admissionregistrationv1.Exact),
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](10),
	}
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(30 * time.Second)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{Webhooks: envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{{
			ObjectMeta: metav1.ObjectMeta{Name: "trusted-delivery-validation"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				validatingWebhook("policies.pac.weave.works", "policies", PolicyPath),
				validatingWebhook("policyconfigs.pac.weave.works", "policyconfigs", PolicyConfigPath),
			},
		}},
	}})
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())

	scheme := kube.NewScheme()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	user, err := env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	kubectl, err = user.Kubectl()
	Expect(err).NotTo(HaveOccurred())

	opts := env.WebhookInstallOptions
	server := webhook.NewServer(webhook.Options{
		Host:    opts.LocalServingHost,
		Port:    opts.LocalServingPort,
		CertDir: opts.LocalServingCertDir,
	})
	server.Register(PolicyPath, &webhook.Admission{Handler: NewPolicyValidator(scheme)})
	server.Register(PolicyConfigPath, &webhook.Admission{Handler: NewPolicyConfigValidator(scheme, k8sClient)})
	go func() {
		defer GinkgoRecover()
		Expect(server.Start(ctx)).To(Succeed())
	}()

	address := net.JoinHostPort(opts.LocalServingHost, fmt.Sprint(opts.LocalServingPort))
	Eventually(func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", address,
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that the test server listens
		if err != nil {
			return err
		}
		return conn.Close()
	}).Should(Succeed(), "the webhook server listens")
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
