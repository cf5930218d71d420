// Package certs provides the serving certificate of the webhook server and
// the CA bundle that the webhook configurations carry.
//
// With SourceSelf the operator issues and rotates them itself with
// cert-controller's rotator, which keeps a CA and a serving certificate in
// a Secret. With SourceCertManager a cert-manager Certificate writes that
// Secret and the kubelet mounts it in the webhook server's certificate
// directory. In both cases a small controller watches the Secret: it reads
// the CA bundle from ca.crt, and with SourceSelf it also writes tls.crt and
// tls.key into the certificate directory, so rotation needs no restart and
// no Secret volume.
package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// Source is the origin of the serving certificate.
type Source string

const (
	// SourceSelf: the operator generates and rotates the CA and the
	// serving certificate in the Secret.
	SourceSelf Source = "self"
	// SourceCertManager: a cert-manager Certificate writes the Secret and
	// the kubelet mounts it in the certificate directory.
	SourceCertManager Source = "cert-manager"
)

// Defaults of Options.
const (
	// DefaultSecretName is the Secret that holds the CA and the serving
	// certificate.
	DefaultSecretName = "trusted-delivery-webhook-cert"
	// DefaultServiceName is the Service in front of the webhook server.
	DefaultServiceName = "trusted-delivery-webhook-service"
	// LocalDNSName is the name the certificate is issued for when the
	// manager runs outside the cluster and the API server calls
	// https://localhost:<port>.
	LocalDNSName = "localhost"
)

// Keys of the certificate Secret, the same for cert-controller and
// cert-manager.
const (
	caCertKey  = "ca.crt"
	certKey    = "tls.crt"
	privateKey = "tls.key"
)

// Options configures the certificates.
type Options struct {
	// Source is SourceSelf or SourceCertManager.
	Source Source
	// Namespace holds the Secret; it is the operator's namespace.
	Namespace string
	// SecretName is the Secret with ca.crt, tls.crt and tls.key.
	SecretName string
	// DNSNames are the names the serving certificate is issued for; the
	// first is its common name. Only SourceSelf uses them.
	DNSNames []string
	// CertDir is the webhook server's certificate directory. With
	// SourceSelf the Secret's tls.crt and tls.key are written there.
	CertDir string
}

// ServiceDNSNames returns the DNS names of a Service, the first being the
// one that the API server uses for a webhook's service reference.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		fmt.Sprintf("%s.%s.svc", service, namespace),
		fmt.Sprintf("%s.%s.svc.cluster.local", service, namespace),
	}
}

// Certificates provides the webhook server's certificate and the CA bundle.
type Certificates struct {
	opts   Options
	loader *keyPairLoader
	bundle *caBundle
}

// New checks the options and returns the certificates. Call ConfigureTLS
// on the webhook server's TLS options before the manager is built, then
// SetupWithManager.
func New(opts Options) (*Certificates, error) {
	if opts.SecretName == "" {
		opts.SecretName = DefaultSecretName
	}
	switch {
	case opts.Source != SourceSelf && opts.Source != SourceCertManager:
		return nil, fmt.Errorf("invalid certificate source %q: use %s or %s", opts.Source, SourceSelf, SourceCertManager)
	case opts.Namespace == "":
		return nil, errors.New("the namespace of the webhook certificate Secret is required")
	case opts.CertDir == "":
		return nil, errors.New("the webhook certificate directory is required")
	case opts.Source == SourceSelf && len(opts.DNSNames) == 0:
		return nil, errors.New("the DNS names of the webhook serving certificate are required")
	}
	return &Certificates{
		opts:   opts,
		loader: newKeyPairLoader(opts.CertDir, certKey, privateKey),
		bundle: newCABundle(),
	}, nil
}

// ConfigureTLS makes the webhook server take its certificate from the
// certificate directory, loaded when it appears and reloaded when it
// changes. Pass it in webhook.Options.TLSOpts. The server then starts
// before the files exist, and accepts TLS connections once they do.
func (c *Certificates) ConfigureTLS(cfg *tls.Config) {
	cfg.GetCertificate = c.loader.GetCertificate
}

// CABundle returns the PEM CA bundle for the webhook configurations, or
// nil when the Secret has none yet.
func (c *Certificates) CABundle() []byte {
	return c.bundle.get()
}

// Changes receives an event whenever the CA bundle changes, for a
// controller's source.Channel. It has one consumer.
func (c *Certificates) Changes() <-chan event.GenericEvent {
	return c.bundle.changes
}

// Ready returns nil once the webhook server can load the serving
// certificate from the certificate directory and the CA bundle is known.
func (c *Certificates) Ready(*http.Request) error {
	if _, err := c.loader.load(); err != nil {
		return err
	}
	if len(c.CABundle()) == 0 {
		return fmt.Errorf("secret %s/%s has no %s yet", c.opts.Namespace, c.opts.SecretName, caCertKey)
	}
	return nil
}

// +kubebuilder:rbac:groups="",namespace=trusted-delivery-system,resources=secrets,verbs=get;list;watch;create;update

// SetupWithManager adds the Secret watcher and, with SourceSelf, the
// rotator to the manager. With SourceSelf it first creates the empty Secret
// when it does not exist, because the rotator only fills an existing one.
// So it calls the API server before the manager starts.
func (c *Certificates) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	if c.opts.Source == SourceSelf {
		if err := c.ensureSecret(ctx, mgr); err != nil {
			return err
		}
		err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      types.NamespacedName{Namespace: c.opts.Namespace, Name: c.opts.SecretName},
			CertDir:        c.opts.CertDir,
			CAName:         "trusted-delivery-ca",
			CAOrganization: "trusted-delivery",
			DNSName:        c.opts.DNSNames[0],
			ExtraDNSNames:  c.opts.DNSNames[1:],
			IsReady:        make(chan struct{}),
			// The webhook configuration reconciler sets the caBundle of
			// both configurations from this Secret, together with their
			// rules, so the rotator writes no webhook configuration and
			// the two never fight over the field.
			Webhooks: nil,
			// Every replica serves webhooks, so every replica needs the
			// certificate. Concurrent rotations are safe: the Secret is
			// updated with its resourceVersion and the loser rereads it.
			RequireLeaderElection: false,
			FieldOwner:            fieldManager,
			ControllerName:        "webhook-cert-rotator",
		})
		if err != nil {
			return fmt.Errorf("add the webhook certificate rotator: %w", err)
		}
	}
	return c.addSecretWatcher(mgr)
}

// fieldManager is the field manager of the certificate writes. It matches
// kube.FieldManager; the constant is repeated to keep this package free of
// the operator's scheme.
const fieldManager = "trusted-delivery"

// ensureSecret creates the empty certificate Secret when it is missing.
func (c *Certificates) ensureSecret(ctx context.Context, mgr manager.Manager) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	key := types.NamespacedName{Namespace: c.opts.Namespace, Name: c.opts.SecretName}
	err := mgr.GetAPIReader().Get(ctx, key, &corev1.Secret{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get webhook certificate Secret %s: %w", key, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels:    map[string]string{tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue},
		},
		Type: corev1.SecretTypeOpaque,
	}
	if err := mgr.GetClient().Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create webhook certificate Secret %s: %w", key, err)
	}
	return nil
}

// caBundle holds the current CA bundle and announces its changes.
type caBundle struct {
	current atomicBytes
	changes chan event.GenericEvent
}

func newCABundle() *caBundle {
	return &caBundle{changes: make(chan event.GenericEvent, 1)}
}

func (b *caBundle) get() []byte {
	return b.current.load()
}

// set stores the bundle and reports whether it changed. A change is sent
// without blocking: one pending event is enough to make the consumer read
// the latest bundle.
func (b *caBundle) set(bundle []byte) bool {
	if slices.Equal(b.current.load(), bundle) {
		return false
	}
	b.current.store(bundle)
	select {
	case b.changes <- event.GenericEvent{Object: &corev1.Secret{}}:
	default:
	}
	return true
}
