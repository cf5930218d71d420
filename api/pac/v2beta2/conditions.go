package v2beta2

// ReadyCondition is the condition type that every kind of this group reports
// first: whether the object is valid and in use.
const ReadyCondition = "Ready"

// Reasons of a PolicySet's Ready condition.
const (
	// PolicySetResolvedReason: the filters select at least one policy.
	PolicySetResolvedReason = "Resolved"

	// PolicySetNoMatchingPoliciesReason: the filters select no policy, so
	// no policy is active in the PolicySet's mode until one matches.
	PolicySetNoMatchingPoliciesReason = "NoMatchingPolicies"
)
