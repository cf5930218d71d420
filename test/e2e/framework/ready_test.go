package framework

import (
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckReady(t *testing.T) {
	cases := []struct {
		name       string
		generation int64
		conditions []metav1.Condition
		// wantErr is a substring of the expected error, or empty for nil.
		wantErr string
	}{
		{
			name:       "no Ready condition",
			generation: 1,
			wantErr:    "has no Ready condition yet",
		},
		{
			name:       "Ready for an older generation",
			generation: 2,
			conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 1}},
			wantErr:    "observed generation 1, want 2",
		},
		{
			name:       "Ready False",
			generation: 1,
			conditions: []metav1.Condition{{
				Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
				Reason: "ArtifactFailed", Message: "digest mismatch",
			}},
			wantErr: "Kustomization ns/app is not ready: ArtifactFailed: digest mismatch",
		},
		{
			name:       "Ready True at the current generation",
			generation: 3,
			conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 3}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := &kustomizev1.Kustomization{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Generation: tc.generation},
				Status:     kustomizev1.KustomizationStatus{Conditions: tc.conditions},
			}
			err := CheckReady(obj)
			if tc.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
		})
	}
}
