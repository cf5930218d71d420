package webhookconfig

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trusted-delivery/trusted-delivery/internal/certs"
)

// Defaults of Options.
const (
	DefaultFailurePolicy  = string(admissionregistrationv1.Ignore)
	DefaultTimeout        = 10 * time.Second
	DefaultServicePort    = 443
	DefaultServiceAccount = "trusted-delivery-controller-manager"
)

// Options configures the webhook configurations and the enforcement
// webhook. BindFlags registers them as manager flags; the manager sets
// Namespace, WebhookHost and WebhookPort from its own flags.
type Options struct {
	// Namespace is the operator's namespace. It is never enforced, and it
	// holds the Service and the certificate Secret.
	Namespace string
	// ExcludedNamespaces are never enforced, besides kube-system and
	// Namespace.
	ExcludedNamespaces string
	// FailurePolicy of the enforcement webhook: Ignore or Fail.
	FailurePolicy string
	// Timeout of the enforcement webhook; the API server accepts 1 to 30
	// seconds.
	Timeout time.Duration
	// ServiceName and ServicePort are the Service in front of the webhook
	// server, used when WebhookHost is empty.
	ServiceName string
	ServicePort int
	// WebhookHost is the address the webhook server listens on. When set,
	// the manager runs outside the cluster and the configurations point the
	// API server at https://localhost:<WebhookPort><path>.
	WebhookHost string
	// WebhookPort is the port of the webhook server.
	WebhookPort int
	// ServiceAccount is the name of the operator's ServiceAccount in
	// Namespace; its requests are never enforced.
	ServiceAccount string
	// CertSource is the source of the serving certificate: self or
	// cert-manager.
	CertSource string
	// CertSecret is the Secret with ca.crt, tls.crt and tls.key.
	CertSecret string
}

// BindFlags registers the flags of the webhook configurations, the
// enforcement webhook and the certificates on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ExcludedNamespaces, "enforcement-excluded-namespaces", "",
		"Comma-separated namespaces where policies are not enforced at admission, besides kube-system and "+
			"--namespace, which are always excluded.")
	fs.StringVar(&o.FailurePolicy, "enforcement-failure-policy", DefaultFailurePolicy,
		"What the API server does when the enforcement webhook cannot be reached or times out: Ignore "+
			"(admit the request) or Fail (reject it). Ignore keeps the cluster working while the operator is "+
			"down or restarting; the audit still reports what was admitted.")
	fs.DurationVar(&o.Timeout, "enforcement-timeout", DefaultTimeout,
		"How long the API server waits for the enforcement webhook, from 1s to 30s. Keep it above --policy-timeout.")
	fs.StringVar(&o.ServiceName, "webhook-service-name", certs.DefaultServiceName,
		"Name of the Service in --namespace in front of the webhook server; the webhook configurations "+
			"reference it unless --webhook-host is set.")
	fs.IntVar(&o.ServicePort, "webhook-service-port", DefaultServicePort,
		"Port of the webhook Service.")
	fs.StringVar(&o.ServiceAccount, "service-account-name", defaultServiceAccount(),
		"Name of the operator's ServiceAccount in --namespace; its own requests are not enforced. "+
			"Defaults to $POD_SERVICE_ACCOUNT or "+DefaultServiceAccount+".")
	fs.StringVar(&o.CertSource, "cert-source", string(certs.SourceSelf),
		"Source of the webhook serving certificate: self (the operator issues and rotates it in "+
			"--webhook-cert-secret) or cert-manager (a cert-manager Certificate writes that Secret, which is "+
			"mounted in --webhook-cert-dir).")
	fs.StringVar(&o.CertSecret, "webhook-cert-secret", certs.DefaultSecretName,
		"Name of the Secret in --namespace with the webhook CA (ca.crt) and serving certificate (tls.crt, tls.key).")
}

func defaultServiceAccount() string {
	if sa := os.Getenv("POD_SERVICE_ACCOUNT"); sa != "" {
		return sa
	}
	return DefaultServiceAccount
}

// Validate checks the options and fills in the defaults of empty fields.
func (o *Options) Validate() error {
	if o.FailurePolicy == "" {
		o.FailurePolicy = DefaultFailurePolicy
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ServiceName == "" {
		o.ServiceName = certs.DefaultServiceName
	}
	if o.ServicePort == 0 {
		o.ServicePort = DefaultServicePort
	}
	if o.CertSource == "" {
		o.CertSource = string(certs.SourceSelf)
	}
	if o.CertSecret == "" {
		o.CertSecret = certs.DefaultSecretName
	}
	if o.ServiceAccount == "" {
		o.ServiceAccount = defaultServiceAccount()
	}

	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("the operator namespace is required"))
	}
	switch admissionregistrationv1.FailurePolicyType(o.FailurePolicy) {
	case admissionregistrationv1.Ignore, admissionregistrationv1.Fail:
	default:
		errs = append(errs, fmt.Errorf("invalid --enforcement-failure-policy %q: use Ignore or Fail", o.FailurePolicy))
	}
	if o.Timeout < time.Second || o.Timeout > 30*time.Second {
		errs = append(errs, fmt.Errorf("invalid --enforcement-timeout %s: use 1s to 30s", o.Timeout))
	}

	if o.WebhookHost != "" && (o.WebhookPort <= 0 || o.WebhookPort > 65535) {
		errs = append(errs, fmt.Errorf("invalid --webhook-port %d: use 1 to 65535", o.WebhookPort))
	}
	if o.WebhookHost == "" && (o.ServicePort <= 0 || o.ServicePort > 65535) {
		errs = append(errs, fmt.Errorf("invalid --webhook-service-port %d: use 1 to 65535", o.ServicePort))
	}
	switch certs.Source(o.CertSource) {
	case certs.SourceSelf, certs.SourceCertManager:
	default:
		errs = append(errs, fmt.Errorf("invalid --cert-source %q: use self or cert-manager", o.CertSource))
	}
	return errors.Join(errs...)
}

// Local reports whether the manager runs outside the cluster, so the
// configurations use URLs on localhost.
func (o *Options) Local() bool {
	return o.WebhookHost != ""
}

// Excluded returns the namespaces where policies are not enforced:
// kube-system, the operator's namespace and ExcludedNamespaces, sorted.
func (o *Options) Excluded() []string {
	excluded := []string{metav1.NamespaceSystem, o.Namespace}
	for _, ns := range strings.Split(o.ExcludedNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			excluded = append(excluded, ns)
		}
	}
	slices.Sort(excluded)
	return slices.Compact(excluded)
}

// OperatorUsername returns the username of the operator's ServiceAccount,
// or "" when ServiceAccount is empty.
func (o *Options) OperatorUsername() string {
	if o.ServiceAccount == "" {
		return ""
	}
	return "system:serviceaccount:" + o.Namespace + ":" + o.ServiceAccount
}

// CertificateOptions returns the options of the webhook certificates for
// the webhook server's certificate directory: the Service's DNS names in a
// cluster, localhost outside.
func (o *Options) CertificateOptions(certDir string) certs.Options {
	dnsNames := certs.ServiceDNSNames(o.ServiceName, o.Namespace)
	if o.Local() {
		dnsNames = []string{certs.LocalDNSName}
	}
	return certs.Options{
		Source:     certs.Source(o.CertSource),
		Namespace:  o.Namespace,
		SecretName: o.CertSecret,
		DNSNames:   dnsNames,
		CertDir:    certDir,
	}
}
