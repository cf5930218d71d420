package certs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// secretReconciler reads the certificate Secret into the CA bundle and,
// with SourceSelf, into the certificate directory.
type secretReconciler struct {
	reader     client.Reader
	key        types.NamespacedName
	writeFiles bool
	certDir    string
	bundle     *caBundle
}

// addSecretWatcher watches the one certificate Secret through a cache of
// its own, so that the manager's cache never holds the cluster's Secrets.
func (c *Certificates) addSecretWatcher(mgr manager.Manager) error {
	secretCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{c.opts.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", c.opts.SecretName),
			},
		},
	})
	if err != nil {
		return fmt.Errorf("create the cache of the webhook certificate Secret: %w", err)
	}
	if err := mgr.Add(secretCache); err != nil {
		return fmt.Errorf("add the cache of the webhook certificate Secret: %w", err)
	}
	r := &secretReconciler{
		reader:     secretCache,
		key:        types.NamespacedName{Namespace: c.opts.Namespace, Name: c.opts.SecretName},
		writeFiles: c.opts.Source == SourceSelf,
		certDir:    c.opts.CertDir,
		bundle:     c.bundle,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("webhook-certificate").
		WatchesRawSource(source.Kind(secretCache, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{})).
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// Reconcile copies the Secret's certificate where the webhook server and
// the webhook configurations read it.
func (r *secretReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.NamespacedName != r.key {
		return reconcile.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx)
	secret := &corev1.Secret{}
	if err := r.reader.Get(ctx, r.key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			log.Info("webhook certificate Secret not found; waiting for it", "secret", r.key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("get webhook certificate Secret %s: %w", r.key, err)
	}
	cert, key := secret.Data[certKey], secret.Data[privateKey]
	if r.writeFiles && len(cert) > 0 && len(key) > 0 {
		changed, err := writeKeyPair(r.certDir, cert, key)
		if err != nil {
			return reconcile.Result{}, err
		}
		if changed {
			log.Info("wrote the webhook serving certificate", "secret", r.key, "dir", r.certDir)
		}
	}
	if r.bundle.set(secret.Data[caCertKey]) {
		log.Info("loaded the webhook CA bundle", "secret", r.key)
	}
	return reconcile.Result{}, nil
}

// writeKeyPair writes tls.key, then tls.crt, each by renaming a temporary
// file so that a reader never sees half a file, and reports whether either
// changed.
func writeKeyPair(dir string, cert, key []byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create webhook certificate directory %s: %w", dir, err)
	}
	changed := false
	for _, file := range []struct {
		name string
		data []byte
	}{{privateKey, key}, {certKey, cert}} {
		path := filepath.Join(dir, file.name)
		if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, file.data) {
			continue
		}
		tmp, err := os.CreateTemp(dir, "."+file.name+"-*")
		if err != nil {
			return changed, fmt.Errorf("write %s: %w", path, err)
		}
		_, writeErr := tmp.Write(file.data)
		closeErr := tmp.Close()
		if writeErr != nil || closeErr != nil {
			_ = os.Remove(tmp.Name())
			return changed, fmt.Errorf("write %s: %w", path, firstError(writeErr, closeErr))
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			_ = os.Remove(tmp.Name())
			return changed, fmt.Errorf("replace %s: %w", path, err)
		}
		changed = true
	}
	return changed, nil
}
