package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// write records the results of a complete scan: the reports, the Policy
// and Workspace status, and the violation metrics. It writes every part it
// can and returns the joined errors. Missing OpenReports CRDs are logged
// and not an error, because the status and the metrics still carry the
// results.
func (a *Auditor) write(ctx context.Context, log logr.Logger, results *report.AuditResults) error {
	var errs []error
	start := time.Now()
	if err := a.Reports.WriteAudit(ctx, results); err != nil {
		if errors.Is(err, report.ErrReportsNotInstalled) {
			log.Error(err, "audit reports not written: install the OpenReports CRDs to get them")
		} else {
			errs = append(errs, err)
		}
	}
	reportsWritten := time.Now()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	errs = append(errs, a.writePolicyStatus(ctx, results, now))
	errs = append(errs, a.writeWorkspaceStatus(ctx, results, now))
	a.setViolationMetrics(results)
	log.V(1).Info("audit results written", "reportsDuration", reportsWritten.Sub(start),
		"statusDuration", time.Since(reportsWritten))
	return errors.Join(errs...)
}

// writePolicyStatus applies status.violationCount and status.lastAuditTime
// of each audited policy, and removes them from policies that the scan did
// not audit because they are no longer active in audit mode.
func (a *Auditor) writePolicyStatus(ctx context.Context, results *report.AuditResults, now metav1.Time) error {
	policies := &pacv2beta3.PolicyList{}
	if err := a.Client.List(ctx, policies); err != nil {
		return fmt.Errorf("list Policies to write their audit status: %w", err)
	}
	counts := results.PolicyCounts()
	var errs []error
	for i := range policies.Items {
		p := &policies.Items[i]
		count, audited := counts[p.Name]
		if !audited && p.Status.ViolationCount == nil && p.Status.LastAuditTime == nil {
			continue
		}
		status := map[string]any{}
		if audited {
			status["violationCount"] = count.Violations
			status["lastAuditTime"] = now.UTC().Format(time.RFC3339)
		}
		if err := a.applyStatus(ctx, pacv2beta3.GroupVersion.String(), "Policy", p.Name, status); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeWorkspaceStatus applies the Compliant condition and
// status.violations of each Workspace whose values changed.
func (a *Auditor) writeWorkspaceStatus(ctx context.Context, results *report.AuditResults, now metav1.Time) error {
	workspaces := &tenancyv1alpha1.WorkspaceList{}
	if err := a.Client.List(ctx, workspaces); err != nil {
		return fmt.Errorf("list Workspaces to write their compliance: %w", err)
	}
	counts := results.WorkspaceCounts()
	var errs []error
	for i := range workspaces.Items {
		ws := &workspaces.Items[i]
		if !ws.DeletionTimestamp.IsZero() {
			continue
		}
		count := counts[ws.Name]
		previous := meta.FindStatusCondition(ws.Status.Conditions, tenancyv1alpha1.CompliantCondition)
		condition := compliantCondition(ws.Generation, count, previous, now)
		if !compliantChanged(previous, ws.Status.Violations, condition, count.Violations) {
			continue
		}
		status := map[string]any{
			"violations": count.Violations,
			"conditions": []any{conditionObject(condition)},
		}
		if err := a.applyStatus(ctx, tenancyv1alpha1.GroupVersion.String(), "Workspace", ws.Name, status); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func conditionObject(c metav1.Condition) map[string]any {
	return map[string]any{
		"type":               c.Type,
		"status":             string(c.Status),
		"reason":             c.Reason,
		"message":            c.Message,
		"observedGeneration": c.ObservedGeneration,
		"lastTransitionTime": c.LastTransitionTime.UTC().Format(time.RFC3339),
	}
}

// applyStatus applies the status fields of a cluster-scoped object with
// FieldManager. Fields the audit set before and status leaves out are
// removed. Fields of other managers are untouched.
func (a *Auditor) applyStatus(ctx context.Context, apiVersion, kind, name string, status map[string]any) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
	}}
	if len(status) > 0 {
		obj.Object["status"] = status
	}
	err := a.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.FieldOwner(FieldManager), client.ForceOwnership)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply audit status of %s %s: %w", kind, name, err)
	}
	return nil
}

// setViolationMetrics replaces trusted_delivery_audit_violations with the
// counts of this scan, so that policies that went away leave no series.
func (a *Auditor) setViolationMetrics(results *report.AuditResults) {
	severities := map[string]string{}
	active := a.Engine.ActivePolicies(policy.ModeAudit)
	for i := range active {
		severities[policy.PolicyID(&active[i])] = active[i].Spec.Severity
	}
	auditViolations.Reset()
	for id, count := range results.PolicyCounts() {
		auditViolations.WithLabelValues(id, severities[id]).Set(float64(count.Violations))
	}
}
