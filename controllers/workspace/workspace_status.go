package workspace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// aspectConditions are the conditions that Ready summarises, in the order
// they follow Ready in the status.
var aspectConditions = []string{
	tenancyv1alpha1.NamespacesReadyCondition,
	tenancyv1alpha1.RBACReadyCondition,
	tenancyv1alpha1.PoliciesReadyCondition,
	tenancyv1alpha1.FluxImpersonationCondition,
}

// namespacesResult is the outcome of the namespaces and quotas phases.
type namespacesResult struct {
	statuses []tenancyv1alpha1.NamespaceStatus
	// failures are quota, LimitRange and release errors.
	failures []string
}

// rbacResult is the outcome of the rbac phase.
type rbacResult struct {
	// notAllowed is the error of a ClusterRole outside the allow-list; the
	// phase applied nothing.
	notAllowed          string
	serviceAccount      string
	namespaces          int
	bindings            int
	missingClusterRoles []string
	failures            []string
}

// policiesResult is the outcome of the policies phase.
type policiesResult struct {
	ids      []string
	failures []string
}

// fluxResult is the outcome of the flux impersonation phase, or of the
// first step of a deletion when deleting is set.
type fluxResult struct {
	serviceAccount string
	notInstalled   bool
	// missingKinds are the Flux kinds whose CRD is not installed while the
	// other one is.
	missingKinds []string
	objects      []tenancyv1alpha1.FluxObjectStatus
	// mismatches describe the objects that name another ServiceAccount.
	mismatches []string
	failures   []string

	deleting bool
	// deletesObjects is set when deletionPolicy Delete made the operator
	// delete the Flux objects.
	deletesObjects bool
	// waiting are the Flux objects that the deletion waits for.
	waiting []string
}

// addFailure records err against the condition of condType and schedules a
// retry.
func (s *workspaceScope) addFailure(condType string, err error) {
	s.retry = append(s.retry, err)
	switch condType {
	case tenancyv1alpha1.RBACReadyCondition:
		if s.rbac == nil {
			s.rbac = &rbacResult{serviceAccount: s.ws.ServiceAccount()}
		}
		s.rbac.failures = append(s.rbac.failures, err.Error())
	case tenancyv1alpha1.PoliciesReadyCondition:
		if s.policies == nil {
			s.policies = &policiesResult{}
		}
		s.policies.failures = append(s.policies.failures, err.Error())
	default:
		if s.namespaces == nil {
			s.namespaces = &namespacesResult{}
		}
		s.namespaces.failures = append(s.namespaces.failures, err.Error())
	}
}

func condition(condType string, generation int64, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
}

// namespacesCondition is NamespacesReady: False with the reason of the
// most pressing problem (conflict, then terminating, then a failed apply)
// and a message that lists every problem.
func namespacesCondition(generation int64, result *namespacesResult) metav1.Condition {
	var conflicts, terminating, pending, ready []string
	for _, ns := range result.statuses {
		switch ns.State {
		case tenancyv1alpha1.NamespaceStateConflict:
			conflicts = append(conflicts, ns.Message)
		case tenancyv1alpha1.NamespaceStateTerminating:
			terminating = append(terminating, ns.Message)
		case tenancyv1alpha1.NamespaceStatePending:
			pending = append(pending, ns.Message)
		default:
			ready = append(ready, ns.Name)
		}
	}
	problems := slices.Concat(conflicts, terminating, pending, result.failures)
	switch {
	case len(conflicts) > 0:
		return condition(tenancyv1alpha1.NamespacesReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.NamespaceConflictReason, joinProblems(problems))
	case len(terminating) > 0:
		return condition(tenancyv1alpha1.NamespacesReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.NamespaceTerminatingReason, joinProblems(problems))
	case len(problems) > 0:
		return condition(tenancyv1alpha1.NamespacesReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ApplyFailedReason, joinProblems(problems))
	}
	return condition(tenancyv1alpha1.NamespacesReadyCondition, generation, metav1.ConditionTrue,
		tenancyv1alpha1.ReconciledReason, fmt.Sprintf("%s ready: %s", plural(len(ready), "namespace"), listNames(ready)))
}

// rbacCondition is RBACReady.
func rbacCondition(generation int64, result *rbacResult) metav1.Condition {
	switch {
	case result.notAllowed != "":
		return condition(tenancyv1alpha1.RBACReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ClusterRoleNotAllowedReason,
			result.notAllowed+"; nothing was changed until the spec names an allowed ClusterRole")
	case len(result.failures) > 0:
		return condition(tenancyv1alpha1.RBACReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ApplyFailedReason, joinProblems(result.failures))
	case len(result.missingClusterRoles) > 0:
		return condition(tenancyv1alpha1.RBACReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ClusterRoleNotFoundReason,
			fmt.Sprintf("ClusterRole %s not found: create it or bind another one; the RoleBindings to it grant nothing until it exists",
				strings.Join(result.missingClusterRoles, ", ")))
	}
	return condition(tenancyv1alpha1.RBACReadyCondition, generation, metav1.ConditionTrue,
		tenancyv1alpha1.ReconciledReason,
		fmt.Sprintf("ServiceAccount %s and %s in %s", result.serviceAccount,
			plural(result.bindings, "RoleBinding"), plural(result.namespaces, "namespace")))
}

// policiesCondition is PoliciesReady.
func policiesCondition(generation int64, result *policiesResult) metav1.Condition {
	if len(result.failures) > 0 {
		return condition(tenancyv1alpha1.PoliciesReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ApplyFailedReason, joinProblems(result.failures))
	}
	message := "no namespace to apply tenancy policies to"
	if len(result.ids) > 0 {
		message = fmt.Sprintf("%s applied: %s", plural(len(result.ids), "tenancy policy"), listNames(result.ids))
	}
	return condition(tenancyv1alpha1.PoliciesReadyCondition, generation, metav1.ConditionTrue,
		tenancyv1alpha1.ReconciledReason, message)
}

// fluxCondition is FluxImpersonation.
func fluxCondition(generation int64, result *fluxResult) metav1.Condition {
	if result.deleting {
		return fluxDeletionCondition(generation, result)
	}
	switch {
	case result.notInstalled:
		return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.FluxNotInstalledReason,
			"the Flux Kustomization and HelmRelease CRDs are not installed; spec.serviceAccountName is set once they are")
	case len(result.failures) > 0:
		return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ApplyFailedReason, joinProblems(result.failures))
	case len(result.mismatches) > 0:
		return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ServiceAccountMismatchReason,
			fmt.Sprintf("%s, not %s; the operator leaves such objects unchanged, so set spec.serviceAccountName to %s or remove it",
				joinProblems(result.mismatches), result.serviceAccount, result.serviceAccount))
	}
	message := fmt.Sprintf("%s deploying as ServiceAccount %s", plural(len(result.objects), "Flux object"), result.serviceAccount)
	if len(result.missingKinds) > 0 {
		message += fmt.Sprintf(" (the %s CRD is not installed)", strings.Join(result.missingKinds, " and "))
	}
	return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionTrue,
		tenancyv1alpha1.ReconciledReason, message)
}

func fluxDeletionCondition(generation int64, result *fluxResult) metav1.Condition {
	if len(result.waiting) == 0 {
		return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.DeletingReason, "no Flux objects left; removing RBAC, quotas, policies and namespaces")
	}
	message := fmt.Sprintf("waiting for %s to be deleted, so that Flux removes what it applied while it can still "+
		"impersonate ServiceAccount %s", listNames(result.waiting), result.serviceAccount)
	if !result.deletesObjects {
		message += "; deletionPolicy Orphan does not delete them, so delete them to continue"
	}
	return condition(tenancyv1alpha1.FluxImpersonationCondition, generation, metav1.ConditionFalse,
		tenancyv1alpha1.WaitingForFluxObjectsReason, message)
}

// readyCondition summarises the aspect conditions in conditions: False with
// the reason of the first one that is not True and the messages of all of
// them; False with reason Progressing while one is missing; True when all
// are True. A Workspace being deleted is not Ready.
func readyCondition(generation int64, deleting bool, conditions []metav1.Condition) metav1.Condition {
	if deleting {
		message := "deleting: removing RBAC, quotas, policies and namespaces"
		if flux := meta.FindStatusCondition(conditions, tenancyv1alpha1.FluxImpersonationCondition); flux != nil &&
			flux.Reason == tenancyv1alpha1.WaitingForFluxObjectsReason {
			message = "deleting: " + flux.Message
		}
		return condition(tenancyv1alpha1.ReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.DeletingReason, message)
	}

	reason := ""
	var problems, unreported []string
	for _, condType := range aspectConditions {
		c := meta.FindStatusCondition(conditions, condType)
		switch {
		case c == nil:
			unreported = append(unreported, condType+" is not reported yet")
		case c.Status != metav1.ConditionTrue:
			problems = append(problems, c.Message)
			if reason == "" {
				reason = c.Reason
			}
		}
	}
	if reason != "" {
		return condition(tenancyv1alpha1.ReadyCondition, generation, metav1.ConditionFalse, reason, joinProblems(problems))
	}
	if len(unreported) > 0 {
		return condition(tenancyv1alpha1.ReadyCondition, generation, metav1.ConditionFalse,
			tenancyv1alpha1.ProgressingReason, joinProblems(unreported))
	}
	return condition(tenancyv1alpha1.ReadyCondition, generation, metav1.ConditionTrue, tenancyv1alpha1.ReconciledReason,
		"namespaces, RBAC, tenancy policies and Flux impersonation are in place")
}

// setConditions sets ready and the aspect conditions, keeping the last
// transition time of each that did not change status, and orders the list:
// Ready, the aspects, then conditions of other writers (Compliant) as they
// were.
func setConditions(conditions *[]metav1.Condition, ready metav1.Condition, aspects ...metav1.Condition) {
	meta.SetStatusCondition(conditions, ready)
	for _, c := range aspects {
		meta.SetStatusCondition(conditions, c)
	}
	order := append([]string{tenancyv1alpha1.ReadyCondition}, aspectConditions...)
	rank := func(c metav1.Condition) int {
		if i := slices.Index(order, c.Type); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(*conditions, func(a, b metav1.Condition) int {
		return rank(a) - rank(b)
	})
}

// conditionEvent is an Event to emit for a condition change.
type conditionEvent struct {
	eventType string
	reason    string
	message   string
}

// informativeReasons are reasons of conditions that are False on the way to
// an expected outcome; their changes are Normal Events.
var informativeReasons = []string{
	tenancyv1alpha1.ProgressingReason,
	tenancyv1alpha1.DeletingReason,
	tenancyv1alpha1.WaitingForFluxObjectsReason,
}

// conditionEvents returns the Events for the changes from before to after:
// a Warning with the condition's reason for each aspect condition that
// became False or changed its message while False, and a Normal Event when
// Ready becomes True. Ready turning False repeats an aspect's Warning, so it
// has none of its own.
func conditionEvents(before, after []metav1.Condition) []conditionEvent {
	var events []conditionEvent
	for _, condType := range aspectConditions {
		now := meta.FindStatusCondition(after, condType)
		if now == nil || now.Status == metav1.ConditionTrue {
			continue
		}
		was := meta.FindStatusCondition(before, condType)
		if was != nil && was.Status == now.Status && was.Reason == now.Reason && was.Message == now.Message {
			continue
		}
		eventType := eventTypeWarning
		if slices.Contains(informativeReasons, now.Reason) {
			eventType = eventTypeNormal
		}
		events = append(events, conditionEvent{eventType: eventType, reason: now.Reason, message: now.Message})
	}
	ready := meta.FindStatusCondition(after, tenancyv1alpha1.ReadyCondition)
	wasReady := meta.IsStatusConditionTrue(before, tenancyv1alpha1.ReadyCondition)
	if ready != nil && ready.Status == metav1.ConditionTrue && !wasReady {
		events = append(events, conditionEvent{eventType: eventTypeNormal, reason: ready.Reason, message: ready.Message})
	}
	return events
}

// patchStatus writes the results of the phases that ran into the status,
// sets observedGeneration when the pass succeeded or stopped on a bad spec,
// and patches the status when it changed. The patch carries the
// resourceVersion it started from, so that it never overwrites a condition
// that another writer (the audit's Compliant) set meanwhile. On a conflict
// it copies the operator's fields onto the latest status and tries again.
func (r *WorkspaceReconciler) patchStatus(ctx context.Context, s *workspaceScope, reconcileErr error) error {
	if s.finalized {
		return nil
	}
	ws := s.ws
	applyResults(s)
	if reconcileErr == nil || errors.Is(reconcileErr, reconcile.TerminalError(nil)) {
		ws.Status.ObservedGeneration = ws.Generation
	}
	if equality.Semantic.DeepEqual(s.before.Status, ws.Status) {
		return nil
	}

	base := s.before
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := r.Status().Patch(ctx, ws, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if !apierrors.IsConflict(err) {
			return err
		}
		latest := &tenancyv1alpha1.Workspace{}
		if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ws), latest); getErr != nil {
			return getErr
		}
		base = latest.DeepCopy()
		copyOwnedStatus(&latest.Status, &ws.Status)
		ws = latest
		return err
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status of workspace %s: %w", ws.Name, err)
	}
	for _, e := range conditionEvents(s.before.Status.Conditions, ws.Status.Conditions) {
		r.event(ws, e.eventType, e.reason, "Reconcile", "%s", e.message)
	}
	return nil
}

// copyOwnedStatus copies the status fields that the Workspace reconciler
// writes from src to dst, and keeps the others (Compliant, violations).
func copyOwnedStatus(dst, src *tenancyv1alpha1.WorkspaceStatus) {
	dst.ObservedGeneration = src.ObservedGeneration
	dst.Namespaces = src.Namespaces
	dst.NamespaceCount = src.NamespaceCount
	dst.Policies = src.Policies
	dst.FluxObjects = src.FluxObjects
	ready := meta.FindStatusCondition(src.Conditions, tenancyv1alpha1.ReadyCondition)
	var aspects []metav1.Condition
	for _, condType := range aspectConditions {
		if c := meta.FindStatusCondition(src.Conditions, condType); c != nil {
			aspects = append(aspects, *c)
		}
	}
	if ready != nil {
		setConditions(&dst.Conditions, *ready, aspects...)
	}
}

// applyResults copies the results of the phases that ran into the status
// and recomputes Ready.
func applyResults(s *workspaceScope) {
	ws := s.ws
	generation := ws.Generation
	var aspects []metav1.Condition
	if s.namespaces != nil {
		if ws.DeletionTimestamp.IsZero() {
			ws.Status.Namespaces = s.namespaces.statuses
			ws.Status.NamespaceCount = countReady(s.namespaces.statuses)
		}
		aspects = append(aspects, namespacesCondition(generation, s.namespaces))
	}
	if s.rbac != nil {
		aspects = append(aspects, rbacCondition(generation, s.rbac))
	}
	if s.policies != nil {
		if ws.DeletionTimestamp.IsZero() {
			ws.Status.Policies = slices.Sorted(slices.Values(s.policies.ids))
		}
		aspects = append(aspects, policiesCondition(generation, s.policies))
	}
	if s.flux != nil {
		if !s.flux.deleting {
			ws.Status.FluxObjects = s.flux.objects
		}
		aspects = append(aspects, fluxCondition(generation, s.flux))
	}

	conditions := slices.Clone(ws.Status.Conditions)
	for _, c := range aspects {
		meta.SetStatusCondition(&conditions, c)
	}
	ready := readyCondition(generation, !ws.DeletionTimestamp.IsZero(), conditions)
	setConditions(&ws.Status.Conditions, ready, aspects...)
}

func countReady(statuses []tenancyv1alpha1.NamespaceStatus) int32 {
	var n int32
	for _, ns := range statuses {
		if ns.State == tenancyv1alpha1.NamespaceStateReady {
			n++
		}
	}
	return n
}

// joinProblems joins messages with "; ", listing at most maxListedInMessage.
func joinProblems(messages []string) string {
	if len(messages) <= maxListedInMessage {
		return strings.Join(messages, "; ")
	}
	return fmt.Sprintf("%s; and %d more problems", strings.Join(messages[:maxListedInMessage], "; "),
		len(messages)-maxListedInMessage)
}

// plural returns "1 namespace", "2 namespaces" or "2 tenancy policies".
func plural(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
