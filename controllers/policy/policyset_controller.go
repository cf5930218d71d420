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

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// PolicySetReconciler pushes the PolicySets to the engine and reports in
// each set's status the policies it selects.
type PolicySetReconciler struct {
	client.Client
	Engine   *policy.Engine
	Recorder events.EventRecorder
	// Elected is closed when this replica becomes the leader, which alone
	// writes status. SetupWithManager sets it from the manager when nil.
	Elected <-chan struct{}
}

// +kubebuilder:rbac:groups=pac.weave.works,resources=policysets,verbs=get;list;watch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policysets/status,verbs=get;patch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies;policyconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile pushes every PolicySet to the engine and resolves the members of
// this one.
func (r *PolicySetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// Every PolicySet reconcile, including that of a deleted set, pushes
	// the full list, so the engine drops deleted sets too.
	if _, _, err := syncSelection(ctx, r.Client, r.Engine); err != nil {
		return ctrl.Result{}, err
	}

	set := &pacv2beta2.PolicySet{}
	if err := r.Get(ctx, req.NamespacedName, set); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get PolicySet %s: %w", req.Name, err)
	}
	if !set.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	policies := &pacv2beta3.PolicyList{}
	if err := r.List(ctx, policies); err != nil {
		return ctrl.Result{}, fmt.Errorf("list Policies for PolicySet %s: %w", set.Name, err)
	}
	selected := policy.SelectedBy(set, policies.Items)
	return ctrl.Result{}, r.patchStatus(ctx, set, selected)
}

// patchStatus writes the members and the Ready condition when they changed
// and this replica is the leader.
func (r *PolicySetReconciler) patchStatus(ctx context.Context, set *pacv2beta2.PolicySet, selected []string) error {
	if !leading(r.Elected) {
		return nil
	}
	before := set.DeepCopy()
	ready := policySetReadyCondition(set, selected)
	setReady(&set.Status.Conditions, ready)
	set.Status.Policies = selected
	set.Status.PolicyCount = int32(len(selected))
	set.Status.ObservedGeneration = set.Generation
	return patchStatusIfChanged(ctx, r.Client, r.Recorder, set, before, readyStatus{
		kind:             "PolicySet",
		action:           "Resolve",
		beforeConditions: before.Status.Conditions,
		ready:            ready,
	})
}

// SetupWithManager registers the reconciler. It runs on every replica; see
// the package documentation.
func (r *PolicySetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Elected == nil {
		r.Elected = mgr.Elected()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&pacv2beta2.PolicySet{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pacv2beta3.Policy{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForAllSets),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("policyset").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// requestsForAllSets enqueues every PolicySet, because a new, changed or
// deleted Policy can change the members of any of them.
func (r *PolicySetReconciler) requestsForAllSets(ctx context.Context, _ client.Object) []reconcile.Request {
	sets := &pacv2beta2.PolicySetList{}
	if err := r.List(ctx, sets); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list PolicySets to reconcile after a Policy change")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(sets.Items))
	for i := range sets.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&sets.Items[i])})
	}
	return requests
}
