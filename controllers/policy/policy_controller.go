package policy

import (
	"context"
	"errors"
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

// PolicyReconciler keeps each Policy compiled in the engine and reports in
// its status whether it compiles (Ready) and the modes it is active in.
type PolicyReconciler struct {
	client.Client
	Engine   *policy.Engine
	Recorder events.EventRecorder
	// Elected is closed when this replica becomes the leader, which alone
	// writes status. SetupWithManager sets it from the manager when nil.
	Elected <-chan struct{}
}

// policyScope is the state that the phases of one Policy reconcile share.
type policyScope struct {
	policy *pacv2beta3.Policy
	before *pacv2beta3.Policy

	sets         []pacv2beta2.PolicySet
	engineStatus *policy.PolicyStatus
}

// +kubebuilder:rbac:groups=pac.weave.works,resources=policies,verbs=get;list;watch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies/status,verbs=get;patch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policysets;policyconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile compiles the Policy into the engine and updates its status.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)

	p := &pacv2beta3.Policy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			r.Engine.RemovePolicy(req.Name)
			log.V(1).Info("removed deleted Policy from the engine")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get Policy %s: %w", req.Name, err)
	}
	if !p.DeletionTimestamp.IsZero() {
		r.Engine.RemovePolicy(p.Name)
		return ctrl.Result{}, nil
	}

	s := &policyScope{policy: p, before: p.DeepCopy()}
	defer func() {
		retErr = errors.Join(retErr, r.patchStatus(ctx, s, retErr))
	}()

	if err := r.loadSelection(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.compile(ctx, s)
	if isTerminalPolicyReason(s.engineStatus.Reason) {
		return ctrl.Result{}, reconcile.TerminalError(
			fmt.Errorf("policy %s: spec.code: %s", p.Name, s.engineStatus.Message))
	}
	return ctrl.Result{}, nil
}

// loadSelection pushes the current PolicySets and PolicyConfigs to the
// engine; they decide the modes and whether required parameters are set.
func (r *PolicyReconciler) loadSelection(ctx context.Context, s *policyScope) error {
	sets, _, err := syncSelection(ctx, r.Client, r.Engine)
	if err != nil {
		return err
	}
	s.sets = sets
	return nil
}

// compile stores the policy in the engine, which compiles it when its
// generation changed.
func (r *PolicyReconciler) compile(ctx context.Context, s *policyScope) {
	status := r.Engine.UpsertPolicy(s.policy)
	s.engineStatus = &status
	if !status.Ready {
		ctrl.LoggerFrom(ctx).V(1).Info("policy is not ready", "reason", status.Reason, "message", status.Message)
	}
}

// patchStatus writes the Ready condition, the modes and, when the pass had
// no transient error, observedGeneration. It writes nothing when the engine
// did not see the policy, when the status is unchanged or when this replica
// is not the leader.
func (r *PolicyReconciler) patchStatus(ctx context.Context, s *policyScope, reconcileErr error) error {
	if s.engineStatus == nil || !leading(r.Elected) {
		return nil
	}
	p := s.policy
	ready := policyReadyCondition(p.Generation, *s.engineStatus)
	setReady(&p.Status.Conditions, ready)
	p.Status.Modes = policyModes(policy.ActiveModes(p, s.sets))
	if reconcileErr == nil || errors.Is(reconcileErr, reconcile.TerminalError(nil)) {
		p.Status.ObservedGeneration = p.Generation
	}
	return patchStatusIfChanged(ctx, r.Client, r.Recorder, p, s.before, readyStatus{
		kind:             "Policy",
		action:           "Compile",
		beforeConditions: s.before.Status.Conditions,
		ready:            ready,
	})
}

// SetupWithManager registers the reconciler. It runs on every replica; see
// the package documentation.
func (r *PolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Elected == nil {
		r.Elected = mgr.Elected()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&pacv2beta3.Policy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pacv2beta2.PolicySet{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForAllPolicies),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pacv2beta3.PolicyConfig{},
			handler.EnqueueRequestsFromMapFunc(requestsForConfiguredPolicies),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("policy").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// requestsForAllPolicies enqueues every Policy, because a PolicySet change
// can change the modes of any of them.
func (r *PolicyReconciler) requestsForAllPolicies(ctx context.Context, _ client.Object) []reconcile.Request {
	policies := &pacv2beta3.PolicyList{}
	if err := r.List(ctx, policies); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Policies to reconcile after a PolicySet change")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(policies.Items))
	for i := range policies.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&policies.Items[i])})
	}
	return requests
}

// requestsForConfiguredPolicies enqueues the policies that a PolicyConfig
// sets parameters for: a config may supply a required parameter.
func requestsForConfiguredPolicies(_ context.Context, obj client.Object) []reconcile.Request {
	cfg, ok := obj.(*pacv2beta3.PolicyConfig)
	if !ok {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(cfg.Spec.Config))
	for policyID := range cfg.Spec.Config {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Name: policyID}})
	}
	return requests
}
