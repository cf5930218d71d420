package policy

import (
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// Modes lists every mode, in the order status.modes reports them.
var Modes = []Mode{ModeAudit, ModeAdmission, ModeTFAdmission}

// anyLabelValue in a targets or exclude label map matches any value of
// the key.
const anyLabelValue = "*"

// PolicyID returns the policy ID: metadata.name, or spec.id for a manifest
// without a name, as the CLI may read.
func PolicyID(p *pacv2beta3.Policy) string {
	if p.Name != "" {
		return p.Name
	}
	return p.Spec.ID
}

// ActivePolicies returns the policies that are active in mode, sorted by ID.
// Terraform policies are active only in tf-admission and Kubernetes
// policies only in audit and admission. When no PolicySet of the mode
// exists every policy of the mode's provider is active; otherwise only those
// that some PolicySet of the mode selects.
func ActivePolicies(mode Mode, policies []pacv2beta3.Policy, sets []pacv2beta2.PolicySet) []pacv2beta3.Policy {
	modeSets := setsOfMode(mode, sets)
	active := make([]pacv2beta3.Policy, 0, len(policies))
	for i := range policies {
		if isActive(mode, &policies[i], modeSets) {
			active = append(active, policies[i])
		}
	}
	sort.Slice(active, func(i, j int) bool { return PolicyID(&active[i]) < PolicyID(&active[j]) })
	return active
}

// ActiveModes returns the modes in which the policy is active.
func ActiveModes(p *pacv2beta3.Policy, sets []pacv2beta2.PolicySet) []Mode {
	var modes []Mode
	for _, mode := range Modes {
		if isActive(mode, p, setsOfMode(mode, sets)) {
			modes = append(modes, mode)
		}
	}
	return modes
}

// SelectedBy returns the sorted IDs of the policies that the PolicySet
// selects and that can run in its mode: terraform policies in tf-admission,
// Kubernetes policies in audit and admission.
func SelectedBy(set *pacv2beta2.PolicySet, policies []pacv2beta3.Policy) []string {
	var ids []string
	tfMode := Mode(set.Spec.Mode) == ModeTFAdmission
	for i := range policies {
		if isTerraform(&policies[i]) == tfMode && Selects(&set.Spec.Filters, &policies[i]) {
			ids = append(ids, PolicyID(&policies[i]))
		}
	}
	sort.Strings(ids)
	return ids
}

func setsOfMode(mode Mode, sets []pacv2beta2.PolicySet) []*pacv2beta2.PolicySet {
	var selected []*pacv2beta2.PolicySet
	for i := range sets {
		if Mode(sets[i].Spec.Mode) == mode {
			selected = append(selected, &sets[i])
		}
	}
	return selected
}

func isActive(mode Mode, p *pacv2beta3.Policy, modeSets []*pacv2beta2.PolicySet) bool {
	if isTerraform(p) != (mode == ModeTFAdmission) {
		return false
	}
	if len(modeSets) == 0 {
		return true
	}
	return slices.ContainsFunc(modeSets, func(set *pacv2beta2.PolicySet) bool {
		return Selects(&set.Spec.Filters, p)
	})
}

func isTerraform(p *pacv2beta3.Policy) bool {
	return p.Spec.Provider == pacv2beta3.ProviderTerraform
}

// Selects reports whether the filters select the policy: it matches an entry
// of any filter list. Empty filters select nothing.
func Selects(f *pacv2beta2.PolicySetFilters, p *pacv2beta3.Policy) bool {
	if slices.Contains(f.IDs, PolicyID(p)) {
		return true
	}
	if p.Spec.Category != "" && slices.Contains(f.Categories, p.Spec.Category) {
		return true
	}
	if slices.Contains(f.Severities, p.Spec.Severity) {
		return true
	}
	for _, standard := range p.Spec.Standards {
		if slices.Contains(f.Standards, standard.ID) {
			return true
		}
	}
	for _, tag := range p.Spec.Tags {
		if slices.Contains(f.Tags, tag) {
			return true
		}
	}
	return false
}

// TargetKinds returns the sorted union of the policies' targets.kinds.
// allKinds is true when some policy has no kinds, so it targets every kind.
func TargetKinds(policies []pacv2beta3.Policy) (kinds []string, allKinds bool) {
	seen := map[string]bool{}
	for i := range policies {
		if len(policies[i].Spec.Targets.Kinds) == 0 {
			allKinds = true
		}
		for _, kind := range policies[i].Spec.Targets.Kinds {
			if !seen[kind] {
				seen[kind] = true
				kinds = append(kinds, kind)
			}
		}
	}
	sort.Strings(kinds)
	return kinds, allKinds
}

// AppliesTo reports whether the policy's targets match the object and no
// exclusion removes it. An empty target list matches everything on its axis.
func AppliesTo(p *pacv2beta3.Policy, obj *unstructured.Unstructured) bool {
	facts := factsOf(obj)
	return facts.matchedBy(p)
}

// objectFacts are the fields of an object that targets and exclusions
// match, read once per object rather than once per policy.
type objectFacts struct {
	kind, namespace, name string
	labels                map[string]string
}

func factsOf(obj *unstructured.Unstructured) objectFacts {
	return objectFacts{
		kind:      obj.GetKind(),
		namespace: obj.GetNamespace(),
		name:      obj.GetName(),
		labels:    obj.GetLabels(),
	}
}

func (o *objectFacts) matchedBy(p *pacv2beta3.Policy) bool {
	targets, exclude := &p.Spec.Targets, &p.Spec.Exclude
	if len(targets.Kinds) > 0 && !slices.Contains(targets.Kinds, o.kind) {
		return false
	}
	// NOTE: a cluster-scoped object has no namespace, so a policy with
	// targets.namespaces never checks it.
	if len(targets.Namespaces) > 0 && !slices.Contains(targets.Namespaces, o.namespace) {
		return false
	}
	if len(targets.Labels) > 0 && !matchesAnyLabelSet(targets.Labels, o.labels) {
		return false
	}

	if o.namespace != "" && slices.Contains(exclude.Namespaces, o.namespace) {
		return false
	}
	if slices.ContainsFunc(exclude.Resources, func(ref string) bool {
		return resourceRefMatches(ref, o.namespace, o.name)
	}) {
		return false
	}
	return !matchesAnyLabelSet(exclude.Labels, o.labels)
}

// matchesAnyLabelSet reports whether labels contain every label of one of
// the sets; a value of "*" matches any value of the key.
func matchesAnyLabelSet(sets []map[string]string, labels map[string]string) bool {
	for _, set := range sets {
		if len(set) == 0 {
			continue
		}
		if containsLabels(labels, set) {
			return true
		}
	}
	return false
}

func containsLabels(labels, want map[string]string) bool {
	for key, value := range want {
		got, ok := labels[key]
		if !ok || (value != anyLabelValue && got != value) {
			return false
		}
	}
	return true
}

// resourceRefMatches matches an exclude.resources entry: "namespace/name",
// or "name" for a cluster-scoped object.
func resourceRefMatches(ref, namespace, name string) bool {
	if ns, n, ok := strings.Cut(ref, "/"); ok {
		return ns == namespace && n == name
	}
	return namespace == "" && ref == name
}
