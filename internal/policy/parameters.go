package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// Flux labels that name the Kustomization or HelmRelease managing an object.
const (
	KustomizationNameLabel      = "kustomize.toolkit.fluxcd.io/name"
	KustomizationNamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
	HelmReleaseNameLabel        = "helm.toolkit.fluxcd.io/name"
	HelmReleaseNamespaceLabel   = "helm.toolkit.fluxcd.io/namespace"
	// TenantLabel on a namespace names the Workspace that owns it.
	TenantLabel = tenancyv1alpha1.TenantLabel
)

// configPriority orders PolicyConfig match types: a higher priority
// overrides a lower one for the same parameter.
type configPriority int

const (
	priorityWorkspaces configPriority = iota
	priorityNamespaces
	priorityApps
	priorityResources
)

// DecodeParameterValue decodes a parameter value. A missing value or JSON
// null means no value, and set is false.
func DecodeParameterValue(raw *apiextensionsv1.JSON) (value any, set bool, err error) {
	if raw == nil || len(raw.Raw) == 0 {
		return nil, false, nil
	}
	if err := json.Unmarshal(raw.Raw, &value); err != nil {
		return nil, false, fmt.Errorf("invalid JSON value: %w", err)
	}
	return value, value != nil, nil
}

// CheckParameterType returns an error when value does not match the declared
// parameter type. A number without a fractional part is an integer, because
// JSON does not tell integers from floats.
func CheckParameterType(declared string, value any) error {
	ok := false
	switch declared {
	case pacv2beta3.ParameterTypeString:
		_, ok = value.(string)
	case pacv2beta3.ParameterTypeInteger:
		ok = isInteger(value)
	case pacv2beta3.ParameterTypeNumber:
		ok = isNumber(value)
	case pacv2beta3.ParameterTypeBoolean:
		_, ok = value.(bool)
	case pacv2beta3.ParameterTypeArray:
		_, ok = value.([]any)
	case pacv2beta3.ParameterTypeObject:
		_, ok = value.(map[string]any)
	default:
		return fmt.Errorf("unknown parameter type %q: use string, integer, number, boolean, array or object", declared)
	}
	if !ok {
		return fmt.Errorf("value %s is not of type %s", describeValue(value), declared)
	}
	return nil
}

func isInteger(value any) bool {
	switch v := value.(type) {
	case int, int32, int64:
		return true
	case float64:
		return !math.IsInf(v, 0) && v == math.Trunc(v)
	case json.Number:
		_, err := v.Int64()
		return err == nil
	}
	return false
}

func isNumber(value any) bool {
	switch value.(type) {
	case int, int32, int64, float64, json.Number:
		return true
	}
	return false
}

// describeValue renders a value for an error message, shortened so that a
// large array or object does not flood a status message.
func describeValue(value any) string {
	const maxLen = 64
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Sprintf("%v", value)
	}
	s := string(data)
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}

// declaredParameter is a parameter of a policy with its decoded default.
type declaredParameter struct {
	name       string
	typ        string
	required   bool
	value      any
	hasDefault bool
}

// declareParameters decodes and type-checks the policy's parameter defaults.
func declareParameters(p *pacv2beta3.Policy) ([]declaredParameter, error) {
	params := make([]declaredParameter, 0, len(p.Spec.Parameters))
	for i, decl := range p.Spec.Parameters {
		value, set, err := DecodeParameterValue(decl.Value)
		if err != nil {
			return nil, fmt.Errorf("spec.parameters[%d] %q: %w", i, decl.Name, err)
		}
		if set {
			if err := CheckParameterType(decl.Type, value); err != nil {
				return nil, fmt.Errorf("spec.parameters[%d] %q: default %w", i, decl.Name, err)
			}
		}
		params = append(params, declaredParameter{
			name:       decl.Name,
			typ:        decl.Type,
			required:   decl.Required,
			value:      value,
			hasDefault: set,
		})
	}
	return params, nil
}

// configEntry is a PolicyConfig with its values decoded once, when the
// configs are set, instead of on every evaluation.
type configEntry struct {
	name     string
	priority configPriority
	match    pacv2beta3.PolicyConfigTarget
	// values maps a policy ID to its parameter values. A value that is not
	// valid JSON is kept as an error and reported when it is used.
	values map[string]map[string]configValue
}

type configValue struct {
	value any
	set   bool
	err   error
}

func newConfigEntries(configs []pacv2beta3.PolicyConfig) []configEntry {
	entries := make([]configEntry, 0, len(configs))
	for i := range configs {
		cfg := &configs[i]
		priority, ok := matchPriority(cfg.Spec.Match)
		if !ok {
			// The schema requires exactly one match type. A config
			// without one matches nothing.
			continue
		}
		entry := configEntry{
			name:     cfg.Name,
			priority: priority,
			match:    *cfg.Spec.Match.DeepCopy(),
			values:   make(map[string]map[string]configValue, len(cfg.Spec.Config)),
		}
		for policyID, policyConfig := range cfg.Spec.Config {
			values := make(map[string]configValue, len(policyConfig.Parameters))
			for name, raw := range policyConfig.Parameters {
				value, set, err := DecodeParameterValue(&raw)
				values[name] = configValue{value: value, set: set, err: err}
			}
			entry.values[policyID] = values
		}
		entries = append(entries, entry)
	}
	// Lower priorities come first, so that later entries override earlier
	// ones. NOTE: the PolicyConfig webhook rejects two configs of the same
	// match type that set the same parameter for the same object. If such
	// configs exist anyway, the one whose name sorts last wins.
	slices.SortStableFunc(entries, func(a, b configEntry) int {
		if a.priority != b.priority {
			return int(a.priority) - int(b.priority)
		}
		return strings.Compare(a.name, b.name)
	})
	return entries
}

// matchPriority returns the priority of the match type that is set.
func matchPriority(match pacv2beta3.PolicyConfigTarget) (configPriority, bool) {
	set := 0
	var priority configPriority
	if len(match.Workspaces) > 0 {
		set++
		priority = priorityWorkspaces
	}
	if len(match.Namespaces) > 0 {
		set++
		priority = priorityNamespaces
	}
	if len(match.Applications) > 0 {
		set++
		priority = priorityApps
	}
	if len(match.Resources) > 0 {
		set++
		priority = priorityResources
	}
	return priority, set == 1
}

// matches reports whether the config applies to the subject.
func (c *configEntry) matches(subject Subject) bool {
	obj := subject.Object
	if obj == nil {
		return false
	}
	switch c.priority {
	case priorityWorkspaces:
		tenant, ok := subject.NamespaceLabels[TenantLabel]
		return ok && slices.Contains(c.match.Workspaces, tenant)
	case priorityNamespaces:
		return obj.GetNamespace() != "" && slices.Contains(c.match.Namespaces, obj.GetNamespace())
	case priorityApps:
		labels := obj.GetLabels()
		return slices.ContainsFunc(c.match.Applications, func(app pacv2beta3.PolicyTargetApplication) bool {
			return appManages(app, labels)
		})
	case priorityResources:
		return slices.ContainsFunc(c.match.Resources, func(r pacv2beta3.PolicyTargetResource) bool {
			return r.Kind == obj.GetKind() && r.Name == obj.GetName() &&
				(r.Namespace == "" || r.Namespace == obj.GetNamespace())
		})
	}
	return false
}

// appManages reports whether the object's Flux labels name the application.
func appManages(app pacv2beta3.PolicyTargetApplication, labels map[string]string) bool {
	nameLabel, namespaceLabel := KustomizationNameLabel, KustomizationNamespaceLabel
	if app.Kind == "HelmRelease" {
		nameLabel, namespaceLabel = HelmReleaseNameLabel, HelmReleaseNamespaceLabel
	}
	if labels[nameLabel] != app.Name {
		return false
	}
	return app.Namespace == "" || labels[namespaceLabel] == app.Namespace
}

// mergeParameters returns the policy's parameters for the subject: the
// defaults, overridden by the matching PolicyConfigs from the lowest to the
// highest priority (workspaces, namespaces, apps, resources). Values for
// parameters that the policy does not declare are ignored, because the
// PolicyConfig status reports them. It returns an error when a value does not
// match its declared type or a required parameter has no value.
func mergeParameters(policyID string, declared []declaredParameter, configs []configEntry, subject Subject) (map[string]ParameterValue, error) {
	params := make(map[string]ParameterValue, len(declared))
	types := make(map[string]string, len(declared))
	for _, d := range declared {
		types[d.name] = d.typ
		if d.hasDefault {
			params[d.name] = ParameterValue{Value: d.value}
		}
	}
	for i := range configs {
		cfg := &configs[i]
		values, ok := cfg.values[policyID]
		if !ok || !cfg.matches(subject) {
			continue
		}
		for name, v := range values {
			typ, declared := types[name]
			if !declared {
				continue
			}
			if v.err != nil {
				return nil, fmt.Errorf("parameter %q from PolicyConfig %s: %w", name, cfg.name, v.err)
			}
			if !v.set {
				continue
			}
			if err := CheckParameterType(typ, v.value); err != nil {
				return nil, fmt.Errorf("parameter %q from PolicyConfig %s: %w", name, cfg.name, err)
			}
			params[name] = ParameterValue{Value: v.value, ConfigRef: cfg.name}
		}
	}
	for _, d := range declared {
		if _, ok := params[d.name]; d.required && !ok {
			return nil, fmt.Errorf("required parameter %q has no value: set a default in the policy or a PolicyConfig that matches this object", d.name)
		}
	}
	return params, nil
}

// unsatisfiedRequired returns the required parameters that have no default
// and that no PolicyConfig sets for the policy, whatever object it matches.
func unsatisfiedRequired(policyID string, declared []declaredParameter, configs []configEntry) []string {
	var missing []string
	for _, d := range declared {
		if !d.required || d.hasDefault {
			continue
		}
		supplied := slices.ContainsFunc(configs, func(c configEntry) bool {
			v, ok := c.values[policyID][d.name]
			return ok && v.set
		})
		if !supplied {
			missing = append(missing, d.name)
		}
	}
	return missing
}
