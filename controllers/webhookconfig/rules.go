package webhookconfig

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// enforcedOperations are the operations the enforcement webhook receives.
var enforcedOperations = []admissionregistrationv1.OperationType{
	admissionregistrationv1.Create, admissionregistrationv1.Update,
}

// ResourceIndex maps a kind to the group/resources that serve it. Policies
// name kinds without a group, so a kind served by several groups maps to
// all of them, as the engine matches kinds by name alone.
type ResourceIndex map[string][]schema.GroupResource

// IndexResources builds the index from discovery's resource lists. It keeps
// top-level resources that accept create or update; subresources such as
// deployments/status are left out, because policies check whole objects.
func IndexResources(lists []*metav1.APIResourceList) ResourceIndex {
	index := ResourceIndex{}
	for _, list := range lists {
		if list == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			if strings.Contains(res.Name, "/") {
				continue
			}
			if !slices.Contains(res.Verbs, "create") && !slices.Contains(res.Verbs, "update") {
				continue
			}
			gr := schema.GroupResource{Group: gv.Group, Resource: res.Name}
			if !slices.Contains(index[res.Kind], gr) {
				index[res.Kind] = append(index[res.Kind], gr)
			}
		}
	}
	return index
}

// RuleSet is the set of rules of the enforcement webhook, with the kinds
// behind them.
type RuleSet struct {
	// Rules of the webhook: one per API group, all versions, or one
	// wildcard rule.
	Rules []admissionregistrationv1.RuleWithOperations
	// Wildcard is true when some policy targets every kind.
	Wildcard bool
	// Kinds are the targeted kinds that the API server serves.
	Kinds []string
	// Unresolved are the targeted kinds that no served resource has yet,
	// such as the kinds of CRDs not installed yet.
	Unresolved []string
}

// podEphemeralContainers is the subresource through which kubectl debug adds
// containers to a running Pod. The request carries the whole Pod, so the
// policies that target Pods check it like an update of the Pod.
const podEphemeralContainers = "pods/ephemeralcontainers"

// EnforcementRules returns the rules that cover the kinds: one rule per API
// group, for all versions of the group's resources, so that a request in
// any version reaches the webhook. allKinds yields one wildcard rule.
func EnforcementRules(kinds []string, allKinds bool, index ResourceIndex) RuleSet {
	if allKinds {
		return RuleSet{
			Wildcard: true,
			Kinds:    slices.Clone(kinds),
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule([]string{"*"}, []string{"*", podEphemeralContainers}),
			},
		}
	}
	var set RuleSet
	byGroup := map[string][]string{}
	for _, kind := range kinds {
		resources := index[kind]
		if len(resources) == 0 {
			set.Unresolved = append(set.Unresolved, kind)
			continue
		}
		set.Kinds = append(set.Kinds, kind)
		for _, gr := range resources {
			if !slices.Contains(byGroup[gr.Group], gr.Resource) {
				byGroup[gr.Group] = append(byGroup[gr.Group], gr.Resource)
			}
			if gr.Group == "" && gr.Resource == "pods" && !slices.Contains(byGroup[""], podEphemeralContainers) {
				byGroup[""] = append(byGroup[""], podEphemeralContainers)
			}
		}
	}
	groups := make([]string, 0, len(byGroup))
	for group := range byGroup {
		groups = append(groups, group)
	}
	sort.Strings(groups)
	for _, group := range groups {
		resources := byGroup[group]
		sort.Strings(resources)
		set.Rules = append(set.Rules, rule([]string{group}, resources))
	}
	sort.Strings(set.Kinds)
	sort.Strings(set.Unresolved)
	return set
}

func rule(groups, resources []string) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: slices.Clone(enforcedOperations),
		Rule: admissionregistrationv1.Rule{
			APIGroups:   groups,
			APIVersions: []string{"*"},
			Resources:   resources,
			Scope:       ptr.To(admissionregistrationv1.AllScopes),
		},
	}
}

// wildcardExclusion is a resource that the wildcard rule leaves out unless
// a policy names its kind: objects that record or ask rather than describe
// desired state, written at a high rate by the control plane.
type wildcardExclusion struct {
	kind      string
	groups    []string
	resources []string
}

var wildcardExclusions = []wildcardExclusion{
	// Every controller writes Events.
	{kind: "Event", groups: []string{"", "events.k8s.io"}, resources: []string{"events"}},
	// Leader election and node heartbeats renew Leases every few seconds.
	{kind: "Lease", groups: []string{"coordination.k8s.io"}, resources: []string{"leases"}},
	// Token and access reviews are created on every authenticated call to
	// servers that delegate authentication, and are never stored.
	{kind: "TokenReview", groups: []string{"authentication.k8s.io"}, resources: []string{"tokenreviews"}},
	{kind: "SubjectAccessReview", groups: []string{"authorization.k8s.io"}, resources: []string{"subjectaccessreviews"}},
}

// Names of the match conditions of the enforcement webhook.
const (
	matchConditionOperator  = "exclude-operator"
	matchConditionHighChurn = "exclude-high-churn-resources"
)

// MatchConditions returns the CEL conditions of the enforcement webhook:
// requests of the operator's user are not sent, and with the wildcard rule
// neither are the resources of wildcardExclusions whose kind no policy
// names. The API server evaluates them before calling the webhook.
func MatchConditions(set RuleSet, operatorUsername string) []admissionregistrationv1.MatchCondition {
	var conditions []admissionregistrationv1.MatchCondition
	if operatorUsername != "" {
		conditions = append(conditions, admissionregistrationv1.MatchCondition{
			Name:       matchConditionOperator,
			Expression: fmt.Sprintf("request.userInfo.username != %q", operatorUsername),
		})
	}
	if !set.Wildcard {
		return conditions
	}
	var terms []string
	for _, ex := range wildcardExclusions {
		if slices.Contains(set.Kinds, ex.kind) {
			continue
		}
		terms = append(terms, fmt.Sprintf("(request.resource.group in %s && request.resource.resource in %s)",
			celList(ex.groups), celList(ex.resources)))
	}
	if len(terms) > 0 {
		conditions = append(conditions, admissionregistrationv1.MatchCondition{
			Name:       matchConditionHighChurn,
			Expression: "!(" + strings.Join(terms, " || ") + ")",
		})
	}
	return conditions
}

func celList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
