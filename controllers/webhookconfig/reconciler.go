// Package webhookconfig keeps the two ValidatingWebhookConfigurations of
// the operator: the enforcement configuration, whose rules follow the kinds
// that admission-mode policies target, and the static configuration that
// validates Policies, PolicyConfigs and Workspaces. It sets their caBundle
// from the webhook certificates, restores them when someone changes them,
// and provides the readiness check of the webhook server.
package webhookconfig

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// unresolvedRecheck is the delay before the reconciler looks again for
// kinds that no served resource has. CRDs trigger a reconcile when they
// change, and this delay covers kinds served by aggregated API servers.
const unresolvedRecheck = time.Minute

// apiextensionsV1CRD is watched as metadata only: the reconciler needs to
// know that a CRD changed, not what it contains.
var apiextensionsV1CRD = schema.GroupVersionKind{
	Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition",
}

// requestKey is the one request of the reconciler: every watched change
// recomputes both configurations.
var requestKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: EnforcementConfigurationName}}

// CABundleSource provides the CA bundle and announces its changes;
// *certs.Certificates implements it.
type CABundleSource interface {
	CABundle() []byte
	Changes() <-chan event.GenericEvent
}

// Reconciler applies the enforcement and validation configurations.
type Reconciler struct {
	// Client reads Policies and PolicySets from the cache and applies the
	// configurations.
	Client client.Client
	// Discovery resolves the targeted kinds to resources.
	Discovery discovery.DiscoveryInterface
	// Certificates provides the caBundle.
	Certificates CABundleSource
	Options      Options

	// applied is the last rule set applied, to log changes once.
	mu      sync.Mutex
	applied *RuleSet
}

// scope is the state that the phases of one reconcile share.
type scope struct {
	caBundle []byte
	kinds    []string
	allKinds bool
	rules    RuleSet
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies;policysets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch

// Reconcile computes the rules from the admission-mode policies and applies
// both configurations.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	s := &scope{caBundle: r.Certificates.CABundle()}
	if len(s.caBundle) == 0 {
		// The certificate Secret watcher sends an event when the CA is
		// loaded.
		log.V(1).Info("waiting for the webhook CA bundle before writing the webhook configurations")
		return ctrl.Result{}, nil
	}
	if err := r.targetKinds(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.resolveRules(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.apply(ctx, EnforcementConfiguration(&r.Options, s.rules, s.caBundle)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.apply(ctx, ValidationConfiguration(&r.Options, s.caBundle)); err != nil {
		return ctrl.Result{}, err
	}
	r.logChange(ctx, s.rules)
	if len(s.rules.Unresolved) > 0 {
		return ctrl.Result{RequeueAfter: unresolvedRecheck}, nil
	}
	return ctrl.Result{}, nil
}

// targetKinds lists the policies active in admission mode and the kinds
// they target. Policies that do not compile count too: their rule is in
// place as soon as they are fixed.
func (r *Reconciler) targetKinds(ctx context.Context, s *scope) error {
	policies := &pacv2beta3.PolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return fmt.Errorf("list Policies: %w", err)
	}
	sets := &pacv2beta2.PolicySetList{}
	if err := r.Client.List(ctx, sets); err != nil {
		return fmt.Errorf("list PolicySets: %w", err)
	}
	active := policy.ActivePolicies(policy.ModeAdmission, policies.Items, sets.Items)
	active = slices.DeleteFunc(active, func(p pacv2beta3.Policy) bool { return !p.DeletionTimestamp.IsZero() })
	if len(active) == 0 {
		// NOTE: the configuration is kept with no rules rather than
		// deleted, so its caBundle and clientConfig stay in place and
		// the next admission policy only adds rules.
		return nil
	}
	s.kinds, s.allKinds = policy.TargetKinds(active)
	return nil
}

// resolveRules maps the kinds to resources through discovery. A group that
// discovery cannot read leaves its kinds unresolved until the next pass.
func (r *Reconciler) resolveRules(ctx context.Context, s *scope) error {
	if s.allKinds || len(s.kinds) == 0 {
		s.rules = EnforcementRules(s.kinds, s.allKinds, nil)
		return nil
	}
	lists, err := r.Discovery.ServerPreferredResources()
	if err != nil {
		var groupErr *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &groupErr) || len(lists) == 0 {
			return fmt.Errorf("discover API resources for the enforcement rules: %w", err)
		}
		ctrl.LoggerFrom(ctx).Info("some API groups could not be discovered; their kinds stay without a rule until the next pass",
			"error", err.Error())
	}
	s.rules = EnforcementRules(s.kinds, false, IndexResources(lists))
	return nil
}

// apply writes the configuration with server-side apply, taking over the
// fields that someone else changed.
func (r *Reconciler) apply(ctx context.Context, cfg *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cfg)
	if err != nil {
		return fmt.Errorf("convert ValidatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	obj := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
	err = r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.FieldOwner(kube.FieldManager), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("apply ValidatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	return nil
}

// logChange logs the rules when they differ from the last ones applied.
func (r *Reconciler) logChange(ctx context.Context, set RuleSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied != nil && slices.Equal(r.applied.Kinds, set.Kinds) &&
		slices.Equal(r.applied.Unresolved, set.Unresolved) && r.applied.Wildcard == set.Wildcard {
		return
	}
	r.applied = &set
	ctrl.LoggerFrom(ctx).Info("applied the enforcement webhook rules",
		"kinds", set.Kinds, "allKinds", set.Wildcard, "unresolvedKinds", set.Unresolved, "rules", len(set.Rules))
}

// SetupWithManager registers the reconciler. It runs on the leader only,
// because every replica would write the same configurations.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Discovery == nil {
		disc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
		if err != nil {
			return fmt.Errorf("create the discovery client of the webhook configurations: %w", err)
		}
		r.Discovery = disc
	}
	if r.Certificates == nil {
		return errors.New("set up the webhook configurations: Certificates is required")
	}
	if err := r.Options.Validate(); err != nil {
		return fmt.Errorf("set up the webhook configurations: %w", err)
	}

	enqueue := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{requestKey}
	})
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsV1CRD)
	ownConfiguration := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		return obj.GetName() == EnforcementConfigurationName || obj.GetName() == ValidationConfigurationName
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("webhookconfig").
		Watches(&pacv2beta3.Policy{}, enqueue, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pacv2beta2.PolicySet{}, enqueue, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(crd, enqueue).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, enqueue, builder.WithPredicates(ownConfiguration)).
		WatchesRawSource(source.Channel(r.Certificates.Changes(), enqueue)).
		Complete(r)
}
