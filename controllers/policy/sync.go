// Package policy holds the reconcilers of the policy kinds: Policy,
// PolicySet and PolicyConfig. They keep the policy engine in sync with the
// API server and report in each object's status what the engine made of it.
//
// The reconcilers run on every replica, not only on the leader, because
// every replica serves the admission webhook from its own engine. Only the
// leader writes status and emits events.
package policy

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// recorderName is the reporting controller of the events these
// reconcilers emit.
const recorderName = "trusted-delivery-policy"

// Setup registers the three reconcilers and the initial load with the
// manager. The engine must be the one the admission webhook and the audit
// use.
func Setup(mgr ctrl.Manager, engine *policy.Engine) error {
	recorder := mgr.GetEventRecorder(recorderName)
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{
		&PolicyReconciler{Client: mgr.GetClient(), Engine: engine, Recorder: recorder},
		&PolicySetReconciler{Client: mgr.GetClient(), Engine: engine, Recorder: recorder},
		&PolicyConfigReconciler{Client: mgr.GetClient(), Engine: engine, Recorder: recorder},
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if err := mgr.Add(&InitialLoad{Reader: mgr.GetClient(), Engine: engine}); err != nil {
		return fmt.Errorf("add the initial policy load to the manager: %w", err)
	}
	return nil
}

// InitialLoad is a manager runnable that loads every Policy, PolicySet and
// PolicyConfig into the engine once the cache has synced, and then marks
// the engine synced. Until then the engine may lack policies, so readiness
// checks and the webhook should wait for Engine.Synced. The reconcilers
// keep the engine current afterwards; loading a policy twice compiles it
// once.
type InitialLoad struct {
	// Reader is the manager's cached client; its List calls wait for the
	// informers to sync.
	Reader client.Reader
	Engine *policy.Engine
}

// Start loads the objects and returns; it runs on every replica.
func (l *InitialLoad) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("policy-initial-load")
	if _, _, err := syncSelection(ctx, l.Reader, l.Engine); err != nil {
		return err
	}
	policies := &pacv2beta3.PolicyList{}
	if err := l.Reader.List(ctx, policies); err != nil {
		return fmt.Errorf("list Policies for the initial load: %w", err)
	}
	notReady := 0
	for i := range policies.Items {
		if status := l.Engine.UpsertPolicy(&policies.Items[i]); !status.Ready {
			notReady++
		}
	}
	l.Engine.MarkSynced()
	log.Info("loaded policies into the engine", "policies", len(policies.Items), "notReady", notReady)
	return nil
}

// NeedLeaderElection is false: every replica needs a loaded engine.
func (l *InitialLoad) NeedLeaderElection() bool {
	return false
}

// syncSelection lists every PolicySet and PolicyConfig from the cache and
// replaces the engine's copies, so that the status computed next uses the
// same state as the cache.
func syncSelection(ctx context.Context, reader client.Reader, engine *policy.Engine) ([]pacv2beta2.PolicySet, []pacv2beta3.PolicyConfig, error) {
	sets := &pacv2beta2.PolicySetList{}
	if err := reader.List(ctx, sets); err != nil {
		return nil, nil, fmt.Errorf("list PolicySets: %w", err)
	}
	configs := &pacv2beta3.PolicyConfigList{}
	if err := reader.List(ctx, configs); err != nil {
		return nil, nil, fmt.Errorf("list PolicyConfigs: %w", err)
	}
	engine.SetPolicySets(sets.Items)
	engine.SetPolicyConfigs(configs.Items)
	return sets.Items, configs.Items, nil
}

// leading reports whether this replica writes status: elected is closed
// once it leads, and nil means it always leads.
// NOTE: a replica that becomes leader does not rewrite the status of objects
// it reconciled before. A change made while leadership moves shows up in
// status at the next change of the object or the next cache resync.
func leading(elected <-chan struct{}) bool {
	if elected == nil {
		return true
	}
	select {
	case <-elected:
		return true
	default:
		return false
	}
}

// readyStatus is the status change of one object in one pass: the object
// before and after the pass changed its status, and the Ready condition the
// pass computed.
type readyStatus struct {
	kind             string
	action           string
	beforeConditions []metav1.Condition
	ready            metav1.Condition
}

// patchStatusIfChanged writes the status of obj with a merge patch from
// before when the pass changed it, then records the Ready event. An object
// deleted in the meantime is not an error.
func patchStatusIfChanged(ctx context.Context, c client.Client, recorder events.EventRecorder,
	obj, before client.Object, change readyStatus) error {
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status of %s %s: %w", change.kind, obj.GetName(), err)
	}
	emitReadyEvent(recorder, obj, change.action, change.beforeConditions, change.ready)
	return nil
}

// emitReadyEvent records an event when the Ready condition changed
// between the conditions before and the Ready condition after.
func emitReadyEvent(recorder events.EventRecorder, obj runtime.Object, action string, before []metav1.Condition, after metav1.Condition) {
	if recorder == nil {
		return
	}
	ev, ok := readyEvent(meta.FindStatusCondition(before, after.Type), after)
	if !ok {
		return
	}
	recorder.Eventf(obj, nil, ev.eventType, ev.reason, action, "%s", ev.message)
}
