package workspace

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// checkCondition compares the parts of a condition that the tests pin; the
// message is matched by substrings.
func checkCondition(t *testing.T, got metav1.Condition, condType string, status metav1.ConditionStatus, reason string, messageParts ...string) {
	t.Helper()
	if got.Type != condType {
		t.Errorf("type = %s, want %s", got.Type, condType)
	}
	if got.Status != status {
		t.Errorf("status = %s, want %s", got.Status, status)
	}
	if got.Reason != reason {
		t.Errorf("reason = %s, want %s", got.Reason, reason)
	}
	if got.ObservedGeneration != 7 {
		t.Errorf("observedGeneration = %d, want 7", got.ObservedGeneration)
	}
	for _, part := range messageParts {
		if !strings.Contains(got.Message, part) {
			t.Errorf("message %q does not contain %q", got.Message, part)
		}
	}
}

func TestNamespacesCondition(t *testing.T) {
	ready := tenancyv1alpha1.NamespaceStatus{Name: "a", State: tenancyv1alpha1.NamespaceStateReady}
	conflict := tenancyv1alpha1.NamespaceStatus{Name: "b", State: tenancyv1alpha1.NamespaceStateConflict, Message: "b belongs to x"}
	terminating := tenancyv1alpha1.NamespaceStatus{Name: "c", State: tenancyv1alpha1.NamespaceStateTerminating, Message: "c is being deleted"}
	pending := tenancyv1alpha1.NamespaceStatus{Name: "d", State: tenancyv1alpha1.NamespaceStatePending, Message: "apply d failed"}

	cases := []struct {
		name    string
		result  namespacesResult
		status  metav1.ConditionStatus
		reason  string
		message []string
	}{
		{
			name:    "all ready",
			result:  namespacesResult{statuses: []tenancyv1alpha1.NamespaceStatus{ready}},
			status:  metav1.ConditionTrue,
			reason:  tenancyv1alpha1.ReconciledReason,
			message: []string{"1 namespace ready: a"},
		},
		{
			name:    "conflict wins over the other problems",
			result:  namespacesResult{statuses: []tenancyv1alpha1.NamespaceStatus{ready, pending, terminating, conflict}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.NamespaceConflictReason,
			message: []string{"b belongs to x", "c is being deleted", "apply d failed"},
		},
		{
			name:    "terminating",
			result:  namespacesResult{statuses: []tenancyv1alpha1.NamespaceStatus{ready, terminating}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.NamespaceTerminatingReason,
			message: []string{"c is being deleted"},
		},
		{
			name:    "namespace apply failed",
			result:  namespacesResult{statuses: []tenancyv1alpha1.NamespaceStatus{pending}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ApplyFailedReason,
			message: []string{"apply d failed"},
		},
		{
			name:    "quota apply failed",
			result:  namespacesResult{statuses: []tenancyv1alpha1.NamespaceStatus{ready}, failures: []string{"apply ResourceQuota a/x: forbidden"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ApplyFailedReason,
			message: []string{"ResourceQuota a/x"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := namespacesCondition(7, &tc.result)
			checkCondition(t, got, tenancyv1alpha1.NamespacesReadyCondition, tc.status, tc.reason, tc.message...)
		})
	}
}

func TestRBACCondition(t *testing.T) {
	cases := []struct {
		name    string
		result  rbacResult
		status  metav1.ConditionStatus
		reason  string
		message []string
	}{
		{
			name:    "applied",
			result:  rbacResult{serviceAccount: "team-a", namespaces: 2, bindings: 4},
			status:  metav1.ConditionTrue,
			reason:  tenancyv1alpha1.ReconciledReason,
			message: []string{"ServiceAccount team-a and 4 RoleBindings in 2 namespaces"},
		},
		{
			name:    "not allowed wins",
			result:  rbacResult{notAllowed: "spec.deploymentRBAC.clusterRole: ClusterRole \"cluster-admin\" is not allowed", failures: []string{"x"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ClusterRoleNotAllowedReason,
			message: []string{"cluster-admin", "nothing was changed"},
		},
		{
			name:    "apply failure before a missing ClusterRole",
			result:  rbacResult{failures: []string{"apply RoleBinding a/b: forbidden"}, missingClusterRoles: []string{"deployer"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ApplyFailedReason,
			message: []string{"RoleBinding a/b"},
		},
		{
			name:    "missing ClusterRole",
			result:  rbacResult{missingClusterRoles: []string{"deployer", "auditor"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ClusterRoleNotFoundReason,
			message: []string{"ClusterRole deployer, auditor not found", "create it"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := rbacCondition(7, &tc.result)
			checkCondition(t, got, tenancyv1alpha1.RBACReadyCondition, tc.status, tc.reason, tc.message...)
		})
	}
}

func TestPoliciesCondition(t *testing.T) {
	checkCondition(t, policiesCondition(7, &policiesResult{ids: []string{"tenancy.a.x", "tenancy.a.y"}}),
		tenancyv1alpha1.PoliciesReadyCondition, metav1.ConditionTrue, tenancyv1alpha1.ReconciledReason,
		"2 tenancy policies applied: tenancy.a.x, tenancy.a.y")
	checkCondition(t, policiesCondition(7, &policiesResult{}),
		tenancyv1alpha1.PoliciesReadyCondition, metav1.ConditionTrue, tenancyv1alpha1.ReconciledReason,
		"no namespace")
	checkCondition(t, policiesCondition(7, &policiesResult{failures: []string{"apply Policy tenancy.a.x: denied"}}),
		tenancyv1alpha1.PoliciesReadyCondition, metav1.ConditionFalse, tenancyv1alpha1.ApplyFailedReason,
		"Policy tenancy.a.x")
}

func TestFluxCondition(t *testing.T) {
	impersonating := tenancyv1alpha1.FluxObjectStatus{Kind: "Kustomization", Namespace: "a", Name: "app", State: tenancyv1alpha1.FluxObjectStateImpersonating}
	cases := []struct {
		name    string
		result  fluxResult
		status  metav1.ConditionStatus
		reason  string
		message []string
	}{
		{
			name:    "impersonating",
			result:  fluxResult{serviceAccount: "team-a", objects: []tenancyv1alpha1.FluxObjectStatus{impersonating}},
			status:  metav1.ConditionTrue,
			reason:  tenancyv1alpha1.ReconciledReason,
			message: []string{"1 Flux object deploying as ServiceAccount team-a"},
		},
		{
			name:    "one CRD missing",
			result:  fluxResult{serviceAccount: "team-a", missingKinds: []string{"HelmRelease"}},
			status:  metav1.ConditionTrue,
			reason:  tenancyv1alpha1.ReconciledReason,
			message: []string{"0 Flux objects", "HelmRelease CRD is not installed"},
		},
		{
			name:    "not installed",
			result:  fluxResult{serviceAccount: "team-a", notInstalled: true},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.FluxNotInstalledReason,
			message: []string{"CRDs are not installed"},
		},
		{
			name:    "mismatch",
			result:  fluxResult{serviceAccount: "team-a", mismatches: []string{"Kustomization a/app uses ServiceAccount other"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ServiceAccountMismatchReason,
			message: []string{"Kustomization a/app uses ServiceAccount other, not team-a", "set spec.serviceAccountName to team-a"},
		},
		{
			name:    "apply failure before mismatch",
			result:  fluxResult{serviceAccount: "team-a", mismatches: []string{"x"}, failures: []string{"set spec.serviceAccountName of Kustomization a/b: denied"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.ApplyFailedReason,
			message: []string{"Kustomization a/b: denied"},
		},
		{
			name:    "deletion waits for orphaned objects",
			result:  fluxResult{serviceAccount: "team-a", deleting: true, waiting: []string{"Kustomization a/app"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.WaitingForFluxObjectsReason,
			message: []string{"waiting for Kustomization a/app to be deleted", "ServiceAccount team-a", "delete them to continue"},
		},
		{
			name:    "deletion waits for deleted objects",
			result:  fluxResult{serviceAccount: "team-a", deleting: true, deletesObjects: true, waiting: []string{"HelmRelease a/app"}},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.WaitingForFluxObjectsReason,
			message: []string{"waiting for HelmRelease a/app to be deleted"},
		},
		{
			name:    "deletion without Flux objects",
			result:  fluxResult{serviceAccount: "team-a", deleting: true},
			status:  metav1.ConditionFalse,
			reason:  tenancyv1alpha1.DeletingReason,
			message: []string{"no Flux objects left"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fluxCondition(7, &tc.result)
			checkCondition(t, got, tenancyv1alpha1.FluxImpersonationCondition, tc.status, tc.reason, tc.message...)
			if tc.result.deletesObjects && strings.Contains(got.Message, "delete them to continue") {
				t.Errorf("message %q asks to delete objects that the operator deletes itself", got.Message)
			}
		})
	}
}

func trueCondition(condType string) metav1.Condition {
	return metav1.Condition{Type: condType, Status: metav1.ConditionTrue, Reason: tenancyv1alpha1.ReconciledReason, Message: "ok"}
}

func allTrue() []metav1.Condition {
	var conditions []metav1.Condition
	for _, condType := range aspectConditions {
		conditions = append(conditions, trueCondition(condType))
	}
	return conditions
}

func TestReadyCondition(t *testing.T) {
	withRBAC := func(reason, message string) []metav1.Condition {
		conditions := allTrue()
		conditions[1] = metav1.Condition{Type: tenancyv1alpha1.RBACReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: message}
		return conditions
	}
	waiting := allTrue()
	waiting[3] = metav1.Condition{Type: tenancyv1alpha1.FluxImpersonationCondition, Status: metav1.ConditionFalse,
		Reason: tenancyv1alpha1.WaitingForFluxObjectsReason, Message: "waiting for Kustomization a/app to be deleted"}

	cases := []struct {
		name       string
		deleting   bool
		conditions []metav1.Condition
		status     metav1.ConditionStatus
		reason     string
		message    []string
	}{
		{
			name:       "all true",
			conditions: allTrue(),
			status:     metav1.ConditionTrue,
			reason:     tenancyv1alpha1.ReconciledReason,
		},
		{
			name:       "one aspect false",
			conditions: withRBAC(tenancyv1alpha1.ClusterRoleNotFoundReason, "ClusterRole deployer not found"),
			status:     metav1.ConditionFalse,
			reason:     tenancyv1alpha1.ClusterRoleNotFoundReason,
			message:    []string{"ClusterRole deployer not found"},
		},
		{
			name:       "aspect not reported yet",
			conditions: allTrue()[:2],
			status:     metav1.ConditionFalse,
			reason:     tenancyv1alpha1.ProgressingReason,
			message:    []string{"PoliciesReady is not reported yet", "FluxImpersonation is not reported yet"},
		},
		{
			name:       "false aspect wins over a missing one",
			conditions: withRBAC(tenancyv1alpha1.ClusterRoleNotAllowedReason, "ClusterRole cluster-admin is not allowed")[1:2],
			status:     metav1.ConditionFalse,
			reason:     tenancyv1alpha1.ClusterRoleNotAllowedReason,
			message:    []string{"ClusterRole cluster-admin is not allowed"},
		},
		{
			name:       "deleting",
			deleting:   true,
			conditions: allTrue(),
			status:     metav1.ConditionFalse,
			reason:     tenancyv1alpha1.DeletingReason,
			message:    []string{"deleting: removing RBAC"},
		},
		{
			name:       "deleting and waiting for Flux",
			deleting:   true,
			conditions: waiting,
			status:     metav1.ConditionFalse,
			reason:     tenancyv1alpha1.DeletingReason,
			message:    []string{"deleting: waiting for Kustomization a/app"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := readyCondition(7, tc.deleting, tc.conditions)
			checkCondition(t, got, tenancyv1alpha1.ReadyCondition, tc.status, tc.reason, tc.message...)
		})
	}
}

func TestSetConditionsOrder(t *testing.T) {
	compliant := metav1.Condition{Type: tenancyv1alpha1.CompliantCondition, Status: metav1.ConditionTrue, Reason: tenancyv1alpha1.NoViolationsReason}
	conditions := []metav1.Condition{compliant, trueCondition(tenancyv1alpha1.FluxImpersonationCondition)}
	aspects := allTrue()
	setConditions(&conditions, trueCondition(tenancyv1alpha1.ReadyCondition), aspects[2], aspects[0], aspects[1])

	want := []string{
		tenancyv1alpha1.ReadyCondition,
		tenancyv1alpha1.NamespacesReadyCondition,
		tenancyv1alpha1.RBACReadyCondition,
		tenancyv1alpha1.PoliciesReadyCondition,
		tenancyv1alpha1.FluxImpersonationCondition,
		tenancyv1alpha1.CompliantCondition,
	}
	var got []string
	for _, c := range conditions {
		got = append(got, c.Type)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestConditionEvents(t *testing.T) {
	notFound := metav1.Condition{Type: tenancyv1alpha1.RBACReadyCondition, Status: metav1.ConditionFalse,
		Reason: tenancyv1alpha1.ClusterRoleNotFoundReason, Message: "ClusterRole deployer not found"}
	notReady := metav1.Condition{Type: tenancyv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: tenancyv1alpha1.ClusterRoleNotFoundReason, Message: notFound.Message}
	ready := trueCondition(tenancyv1alpha1.ReadyCondition)
	waiting := metav1.Condition{Type: tenancyv1alpha1.FluxImpersonationCondition, Status: metav1.ConditionFalse,
		Reason: tenancyv1alpha1.WaitingForFluxObjectsReason, Message: "waiting"}

	cases := []struct {
		name   string
		before []metav1.Condition
		after  []metav1.Condition
		want   []string // "<type> <reason>"
	}{
		{
			name:   "aspect becomes false",
			before: append(allTrue(), ready),
			after:  []metav1.Condition{notReady, notFound},
			want:   []string{"Warning ClusterRoleNotFound"},
		},
		{
			name:   "unchanged false aspect is quiet",
			before: []metav1.Condition{notReady, notFound},
			after:  []metav1.Condition{notReady, notFound},
		},
		{
			name:   "message change repeats the warning",
			before: []metav1.Condition{notFound},
			after:  []metav1.Condition{{Type: notFound.Type, Status: notFound.Status, Reason: notFound.Reason, Message: "ClusterRole x not found"}},
			want:   []string{"Warning ClusterRoleNotFound"},
		},
		{
			name:   "ready again",
			before: []metav1.Condition{notReady, notFound},
			after:  append(allTrue(), ready),
			want:   []string{"Normal Reconciled"},
		},
		{
			name:  "waiting for Flux is normal",
			after: []metav1.Condition{waiting},
			want:  []string{"Normal WaitingForFluxObjects"},
		},
		{
			name:   "staying ready is quiet",
			before: append(allTrue(), ready),
			after:  append(allTrue(), ready),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range conditionEvents(tc.before, tc.after) {
				got = append(got, e.eventType+" "+e.reason)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("events = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	cases := map[string]string{
		plural(1, "namespace"):      "1 namespace",
		plural(2, "namespace"):      "2 namespaces",
		plural(0, "tenancy policy"): "0 tenancy policies",
		plural(3, "RoleBinding"):    "3 RoleBindings",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("plural = %q, want %q", got, want)
		}
	}
}

func TestClaimNamespace(t *testing.T) {
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	labelled := func(tenant string) *corev1.Namespace {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}
		if tenant != "" {
			ns.Labels = map[string]string{tenancyv1alpha1.TenantLabel: tenant}
		}
		return ns
	}
	now := metav1.Now()
	terminating := labelled("team-a")
	terminating.DeletionTimestamp = &now

	cases := []struct {
		name         string
		existing     *corev1.Namespace
		otherListers []string
		owner        tenantLabelOwner
		state        string
		message      string
	}{
		{name: "missing and unlisted", state: tenancyv1alpha1.NamespaceStateReady},
		{name: "existing without label", existing: labelled(""), state: tenancyv1alpha1.NamespaceStateReady},
		{name: "labelled for this workspace", existing: labelled("team-a"), otherListers: []string{"team-b"},
			state: tenancyv1alpha1.NamespaceStateReady},
		{
			name: "labelled for another workspace", existing: labelled("team-b"),
			owner: tenantLabelOwner{name: "team-b", exists: true},
			state: tenancyv1alpha1.NamespaceStateConflict, message: "belongs to Workspace team-b",
		},
		{
			name: "labelled for a workspace being deleted", existing: labelled("team-b"),
			owner: tenantLabelOwner{name: "team-b", exists: true, deleting: true},
			state: tenancyv1alpha1.NamespaceStateConflict, message: "is being deleted",
		},
		{
			name: "stale label of a deleted workspace", existing: labelled("gone"),
			owner: tenantLabelOwner{name: "gone"},
			state: tenancyv1alpha1.NamespaceStateReady,
		},
		{
			name: "missing but listed by another", otherListers: []string{"team-b", "team-c"},
			state: tenancyv1alpha1.NamespaceStateConflict, message: "also listed by Workspace team-b, team-c",
		},
		{
			name: "unlabelled and listed by another", existing: labelled(""), otherListers: []string{"team-b"},
			state: tenancyv1alpha1.NamespaceStateConflict, message: "also listed by Workspace team-b",
		},
		{
			name: "terminating", existing: terminating,
			state: tenancyv1alpha1.NamespaceStateTerminating, message: "is being deleted",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := claimNamespace(ws, "apps", tc.existing, tc.otherListers, tc.owner)
			if got.state != tc.state {
				t.Errorf("state = %s, want %s (message %q)", got.state, tc.state, got.message)
			}
			if !strings.Contains(got.message, tc.message) {
				t.Errorf("message %q does not contain %q", got.message, tc.message)
			}
		})
	}
}

func TestCopyOwnedStatusKeepsCompliant(t *testing.T) {
	compliant := metav1.Condition{Type: tenancyv1alpha1.CompliantCondition, Status: metav1.ConditionFalse,
		Reason: tenancyv1alpha1.ViolationsFoundReason, Message: "3 violations"}
	violations := int64(3)
	dst := tenancyv1alpha1.WorkspaceStatus{
		ObservedGeneration: 1,
		Conditions:         []metav1.Condition{trueCondition(tenancyv1alpha1.ReadyCondition), compliant},
		Violations:         &violations,
	}
	src := tenancyv1alpha1.WorkspaceStatus{
		ObservedGeneration: 2,
		Conditions: append([]metav1.Condition{{
			Type: tenancyv1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: tenancyv1alpha1.ClusterRoleNotFoundReason,
		}}, allTrue()...),
		NamespaceCount: 2,
		Policies:       []string{"tenancy.a.x"},
	}
	copyOwnedStatus(&dst, &src)

	if dst.ObservedGeneration != 2 || dst.NamespaceCount != 2 || len(dst.Policies) != 1 {
		t.Errorf("owned fields not copied: %+v", dst)
	}
	if dst.Violations == nil || *dst.Violations != 3 {
		t.Errorf("violations = %v, want 3", dst.Violations)
	}
	var types []string
	for _, c := range dst.Conditions {
		types = append(types, c.Type)
	}
	want := "Ready,NamespacesReady,RBACReady,PoliciesReady,FluxImpersonation,Compliant"
	if strings.Join(types, ",") != want {
		t.Errorf("conditions = %v, want %s", types, want)
	}
	if dst.Conditions[0].Reason != tenancyv1alpha1.ClusterRoleNotFoundReason {
		t.Errorf("Ready reason = %s, want the copied one", dst.Conditions[0].Reason)
	}
	if dst.Conditions[5].Message != "3 violations" {
		t.Errorf("Compliant changed: %+v", dst.Conditions[5])
	}
}
