package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// configCheck lists what is wrong with a PolicyConfig's config entries.
type configCheck struct {
	// missingPolicies are policy IDs that name no Policy.
	missingPolicies []string
	// unknownParameters are "policyID.parameter" entries that the policy
	// does not declare.
	unknownParameters []string
	// invalidValues describe values that do not match the declared type.
	invalidValues []string
}

// checkPolicyConfig compares the config's entries with the policies' declared
// parameters, given by policy ID. The lists are sorted.
func checkPolicyConfig(cfg *pacv2beta3.PolicyConfig, policies map[string]*pacv2beta3.Policy) configCheck {
	var check configCheck
	for policyID, entry := range cfg.Spec.Config {
		p, ok := policies[policyID]
		if !ok {
			check.missingPolicies = append(check.missingPolicies, policyID)
			continue
		}
		for name, raw := range entry.Parameters {
			i := slices.IndexFunc(p.Spec.Parameters, func(d pacv2beta3.PolicyParameters) bool { return d.Name == name })
			if i < 0 {
				check.unknownParameters = append(check.unknownParameters, policyID+"."+name)
				continue
			}
			value, set, err := policy.DecodeParameterValue(&raw)
			if err == nil && set {
				err = policy.CheckParameterType(p.Spec.Parameters[i].Type, value)
			}
			if err != nil {
				check.invalidValues = append(check.invalidValues,
					fmt.Sprintf("spec.config[%s].parameters[%s]: %v", policyID, name, err))
			}
		}
	}
	sort.Strings(check.missingPolicies)
	sort.Strings(check.unknownParameters)
	sort.Strings(check.invalidValues)
	return check
}

// policyConfigReadyCondition summarises the check: the reason is the first
// problem in the order PolicyNotFound, UnknownParameter, InvalidValue, and
// the message lists every problem.
func policyConfigReadyCondition(generation int64, check configCheck) metav1.Condition {
	var problems []string
	reason := ""
	if len(check.missingPolicies) > 0 {
		reason = pacv2beta3.PolicyConfigPolicyNotFoundReason
		problems = append(problems, fmt.Sprintf("policies not found: %s", strings.Join(check.missingPolicies, ", ")))
	}
	if len(check.unknownParameters) > 0 {
		if reason == "" {
			reason = pacv2beta3.PolicyConfigUnknownParameterReason
		}
		problems = append(problems, fmt.Sprintf("parameters not declared by their policy: %s",
			strings.Join(check.unknownParameters, ", ")))
	}
	if len(check.invalidValues) > 0 {
		if reason == "" {
			reason = pacv2beta3.PolicyConfigInvalidValueReason
		}
		problems = append(problems, fmt.Sprintf("invalid values: %s", strings.Join(check.invalidValues, "; ")))
	}
	if reason == "" {
		return readyCondition(generation, true, pacv2beta3.PolicyConfigValidReason,
			"every policy exists and declares every parameter set for it, with a value of its type")
	}
	return readyCondition(generation, false, reason, strings.Join(problems, "; "))
}
