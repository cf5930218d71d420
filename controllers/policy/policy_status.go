package policy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// policyReadyCondition turns the engine's view of a policy into its Ready
// condition.
func policyReadyCondition(generation int64, status policy.PolicyStatus) metav1.Condition {
	return readyCondition(generation, status.Ready, status.Reason, status.Message)
}

// policyModes renders the active modes for status.modes.
func policyModes(modes []policy.Mode) []string {
	out := make([]string, 0, len(modes))
	for _, m := range modes {
		out = append(out, string(m))
	}
	return out
}

// isTerminalPolicyReason reports whether a Ready reason comes from the
// policy's own spec, so that only a new generation can fix it. Missing
// required parameters are not terminal: a PolicyConfig can supply them.
func isTerminalPolicyReason(reason string) bool {
	return reason == pacv2beta3.PolicyCompileErrorReason || reason == pacv2beta3.PolicyMissingViolationRuleReason
}
