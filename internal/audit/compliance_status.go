package audit

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// compliantCondition returns a Workspace's Compliant condition for the
// violations the last scan found in its namespaces. It keeps the last
// transition time of previous when the status did not change.
func compliantCondition(generation int64, count report.WorkspaceCount, previous *metav1.Condition, now metav1.Time) metav1.Condition {
	c := metav1.Condition{
		Type:               tenancyv1alpha1.CompliantCondition,
		ObservedGeneration: generation,
		LastTransitionTime: now,
	}
	if count.Violations == 0 {
		c.Status = metav1.ConditionTrue
		c.Reason = tenancyv1alpha1.NoViolationsReason
		c.Message = "the last audit found no violations in the namespaces"
	} else {
		c.Status = metav1.ConditionFalse
		c.Reason = tenancyv1alpha1.ViolationsFoundReason
		c.Message = fmt.Sprintf("the last audit found %d %s in the namespaces, the worst of %s severity",
			count.Violations, plural(count.Violations, "violation", "violations"), count.WorstSeverity)
	}
	if previous != nil && previous.Status == c.Status {
		c.LastTransitionTime = previous.LastTransitionTime
	}
	return c
}

// compliantChanged reports whether applying c and violations would change
// the Workspace status: a new condition, or another status, reason,
// message, generation or count.
func compliantChanged(previous *metav1.Condition, previousViolations *int64, c metav1.Condition, violations int64) bool {
	if previous == nil || previousViolations == nil || *previousViolations != violations {
		return true
	}
	return previous.Status != c.Status || previous.Reason != c.Reason || previous.Message != c.Message ||
		previous.ObservedGeneration != c.ObservedGeneration
}

func plural(n int64, singular, pluralForm string) string {
	if n == 1 {
		return singular
	}
	return pluralForm
}
