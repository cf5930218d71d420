package audit

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

func TestCompliantCondition(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC))
	cases := []struct {
		name     string
		count    report.WorkspaceCount
		previous *metav1.Condition
		// want* are the expected fields of the condition.
		wantStatus     metav1.ConditionStatus
		wantReason     string
		wantMessage    string
		wantTransition metav1.Time
	}{
		{
			name:           "first audit without violations",
			wantStatus:     metav1.ConditionTrue,
			wantReason:     tenancyv1alpha1.NoViolationsReason,
			wantMessage:    "the last audit found no violations in the namespaces",
			wantTransition: now,
		},
		{
			name:           "one violation",
			count:          report.WorkspaceCount{Violations: 1, WorstSeverity: "medium"},
			wantStatus:     metav1.ConditionFalse,
			wantReason:     tenancyv1alpha1.ViolationsFoundReason,
			wantMessage:    "the last audit found 1 violation in the namespaces, the worst of medium severity",
			wantTransition: now,
		},
		{
			// A changed count keeps the transition time of the same status.
			name:  "more violations than before",
			count: report.WorkspaceCount{Violations: 4, WorstSeverity: "high"},
			previous: &metav1.Condition{
				Type: tenancyv1alpha1.CompliantCondition, Status: metav1.ConditionFalse,
				Reason: tenancyv1alpha1.ViolationsFoundReason, LastTransitionTime: earlier,
			},
			wantStatus:     metav1.ConditionFalse,
			wantReason:     tenancyv1alpha1.ViolationsFoundReason,
			wantMessage:    "the last audit found 4 violations in the namespaces, the worst of high severity",
			wantTransition: earlier,
		},
		{
			name: "fixed",
			previous: &metav1.Condition{
				Type: tenancyv1alpha1.CompliantCondition, Status: metav1.ConditionFalse,
				Reason: tenancyv1alpha1.ViolationsFoundReason, LastTransitionTime: earlier,
			},
			wantStatus:     metav1.ConditionTrue,
			wantReason:     tenancyv1alpha1.NoViolationsReason,
			wantMessage:    "the last audit found no violations in the namespaces",
			wantTransition: now,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := compliantCondition(7, tc.count, tc.previous, now)
			if got.Type != tenancyv1alpha1.CompliantCondition {
				t.Errorf("type = %q", got.Type)
			}
			if got.Status != tc.wantStatus {
				t.Errorf("status = %q, want %q", got.Status, tc.wantStatus)
			}
			if got.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", got.Reason, tc.wantReason)
			}
			if got.Message != tc.wantMessage {
				t.Errorf("message = %q, want %q", got.Message, tc.wantMessage)
			}
			if !got.LastTransitionTime.Equal(&tc.wantTransition) {
				t.Errorf("lastTransitionTime = %v, want %v", got.LastTransitionTime, tc.wantTransition)
			}
			if got.ObservedGeneration != 7 {
				t.Errorf("observedGeneration = %d, want 7", got.ObservedGeneration)
			}
		})
	}
}

func TestCompliantChanged(t *testing.T) {
	condition := compliantCondition(1, report.WorkspaceCount{Violations: 2, WorstSeverity: "low"}, nil, metav1.Now())
	same := condition
	if compliantChanged(&same, ptr.To[int64](2), condition, 2) {
		t.Error("an equal condition and count are reported as a change")
	}
	if !compliantChanged(&same, ptr.To[int64](3), condition, 2) {
		t.Error("a new count is not a change")
	}
	if !compliantChanged(nil, ptr.To[int64](2), condition, 2) {
		t.Error("a missing condition is not a change")
	}
	if !compliantChanged(&same, nil, condition, 2) {
		t.Error("a missing count is not a change")
	}
	newer := same
	newer.ObservedGeneration = 2
	if !compliantChanged(&newer, ptr.To[int64](2), condition, 2) {
		t.Error("a new generation is not a change")
	}
}
