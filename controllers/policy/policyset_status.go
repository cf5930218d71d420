package policy

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// policySetReadyCondition reports whether the set's filters select any
// policy.
func policySetReadyCondition(set *pacv2beta2.PolicySet, selected []string) metav1.Condition {
	if len(selected) == 0 {
		return readyCondition(set.Generation, false, pacv2beta2.PolicySetNoMatchingPoliciesReason,
			fmt.Sprintf("the filters select no %s policy, so no policy is active in %s mode until one matches",
				providerOfMode(set.Spec.Mode), set.Spec.Mode))
	}
	return readyCondition(set.Generation, true, pacv2beta2.PolicySetResolvedReason,
		fmt.Sprintf("selects %d policies for %s mode", len(selected), set.Spec.Mode))
}

func providerOfMode(mode string) string {
	if policy.Mode(mode) == policy.ModeTFAdmission {
		return pacv2beta3.ProviderTerraform
	}
	return pacv2beta3.ProviderKubernetes
}
