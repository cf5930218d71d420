package policy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// PolicyConfigReconciler pushes the PolicyConfigs to the engine and reports
// in each config's status the policies and parameters it names that do not
// exist, and values of the wrong type.
//
// A PolicyConfig with problems is still used: its valid values apply, and
// an object that a wrongly typed value applies to gets an error result from
// that policy instead of a silent pass.
type PolicyConfigReconciler struct {
	client.Client
	Engine   *policy.Engine
	Recorder events.EventRecorder
	// Elected is closed when this replica becomes the leader, which alone
	// writes status. SetupWithManager sets it from the manager when nil.
	Elected <-chan struct{}
}

// +kubebuilder:rbac:groups=pac.weave.works,resources=policyconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policyconfigs/status,verbs=get;patch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies;policysets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile pushes every PolicyConfig to the engine and checks this one
// against the policies it names.
func (r *PolicyConfigReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// Every reconcile, including that of a deleted config, pushes the full
	// list, so the engine drops deleted configs too.
	if _, _, err := syncSelection(ctx, r.Client, r.Engine); err != nil {
		return ctrl.Result{}, err
	}

	cfg := &pacv2beta3.PolicyConfig{}
	if err := r.Get(ctx, req.NamespacedName, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get PolicyConfig %s: %w", req.Name, err)
	}
	if !cfg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	list := &pacv2beta3.PolicyList{}
	if err := r.List(ctx, list); err != nil {
		return ctrl.Result{}, fmt.Errorf("list Policies for PolicyConfig %s: %w", cfg.Name, err)
	}
	policies := make(map[string]*pacv2beta3.Policy, len(list.Items))
	for i := range list.Items {
		policies[policy.PolicyID(&list.Items[i])] = &list.Items[i]
	}
	check := checkPolicyConfig(cfg, policies)
	return ctrl.Result{}, r.patchStatus(ctx, cfg, check)
}

// patchStatus writes the check and the Ready condition when they changed and
// this replica is the leader.
func (r *PolicyConfigReconciler) patchStatus(ctx context.Context, cfg *pacv2beta3.PolicyConfig, check configCheck) error {
	if !leading(r.Elected) {
		return nil
	}
	before := cfg.DeepCopy()
	ready := policyConfigReadyCondition(cfg.Generation, check)
	setReady(&cfg.Status.Conditions, ready)
	cfg.Status.MissingPolicies = check.missingPolicies
	cfg.Status.UnknownParameters = check.unknownParameters
	cfg.Status.ObservedGeneration = cfg.Generation
	return patchStatusIfChanged(ctx, r.Client, r.Recorder, cfg, before, readyStatus{
		kind:             "PolicyConfig",
		action:           "Validate",
		beforeConditions: before.Status.Conditions,
		ready:            ready,
	})
}

// SetupWithManager registers the reconciler. It runs on every replica; see
// the package documentation.
func (r *PolicyConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Elected == nil {
		r.Elected = mgr.Elected()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&pacv2beta3.PolicyConfig{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pacv2beta3.Policy{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("policyconfig").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// requestsForPolicy enqueues the PolicyConfigs that name the policy, whose
// creation, deletion or parameter change can change their check.
func (r *PolicyConfigReconciler) requestsForPolicy(ctx context.Context, obj client.Object) []reconcile.Request {
	configs := &pacv2beta3.PolicyConfigList{}
	if err := r.List(ctx, configs); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list PolicyConfigs to reconcile after a Policy change")
		return nil
	}
	var requests []reconcile.Request
	for i := range configs.Items {
		if _, ok := configs.Items[i].Spec.Config[obj.GetName()]; ok {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&configs.Items[i])})
		}
	}
	return requests
}
