package webhookconfig

import (
	"errors"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// CertificateChecker reports whether the serving certificate is loaded and
// the CA bundle known; *certs.Certificates implements it.
type CertificateChecker interface {
	Ready(*http.Request) error
}

// ReadyChecker returns the readiness check of the webhook server. It passes
// once the serving certificate is loaded, the server accepts TLS
// connections, and the engine has loaded every policy. So the Service sends
// no request to a replica that would evaluate it with a cold cache.
func ReadyChecker(certificates CertificateChecker, server webhook.Server, engine *policy.Engine) healthz.Checker {
	started := server.StartedChecker()
	return func(req *http.Request) error {
		if err := certificates.Ready(req); err != nil {
			return fmt.Errorf("webhook certificate not ready: %w", err)
		}
		if err := started(req); err != nil {
			return err
		}
		if !engine.Synced() {
			return errors.New("the policy engine has not loaded the policies yet")
		}
		return nil
	}
}
