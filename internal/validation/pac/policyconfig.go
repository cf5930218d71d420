package pac

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// PolicyConfigValidator is the admission handler of PolicyConfigPath. It
// rejects a PolicyConfig whose match sets no or several match types. It also
// rejects one whose targets overlap those of another PolicyConfig of the same
// match type that sets the same parameter of the same policy, because the
// engine could not tell which value applies.
type PolicyConfigValidator struct {
	decoder admission.Decoder
	// reader lists the other PolicyConfigs; the manager's cached client
	// is fine.
	reader client.Reader
}

// NewPolicyConfigValidator returns the handler; the scheme must contain both
// pac.weave.works versions, as kube.NewScheme does.
func NewPolicyConfigValidator(scheme *runtime.Scheme, reader client.Reader) *PolicyConfigValidator {
	return &PolicyConfigValidator{decoder: admission.NewDecoder(scheme), reader: reader}
}

var _ admission.Handler = &PolicyConfigValidator{}

// Handle validates CREATE and UPDATE requests and allows the rest.
func (v *PolicyConfigValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	cfg, err := decodeAs(v.decoder, req.Kind, req.Object,
		func() runtime.Object { return &pacv2beta2.PolicyConfig{} },
		func() *pacv2beta3.PolicyConfig { return &pacv2beta3.PolicyConfig{} })
	if err != nil {
		return badRequest(err)
	}

	errs := validateMatchTypes(cfg)
	if len(errs) == 0 {
		others := &pacv2beta3.PolicyConfigList{}
		if err := v.reader.List(ctx, others); err != nil {
			err = fmt.Errorf("list PolicyConfigs to check PolicyConfig %s for overlaps: %w", cfg.Name, err)
			logf.FromContext(ctx).Error(err, "rejected PolicyConfig because the check could not run", "uid", req.UID)
			return admission.Errored(http.StatusInternalServerError, err)
		}
		errs = ValidateOverlaps(cfg, others.Items)
	}
	if len(errs) > 0 {
		return invalid(pacv2beta3.GroupVersion.WithKind("PolicyConfig").GroupKind(), cfg.Name, errs)
	}
	return admission.Allowed("")
}

// matchType is the match type that a PolicyConfig sets, with its targets.
type matchType struct {
	name    string
	targets []target
}

// target is one entry of a match list.
type target struct {
	kind, name string
	// namespace is empty when the target matches any namespace.
	namespace string
}

func (t target) overlaps(o target) bool {
	return t.kind == o.kind && t.name == o.name &&
		(t.namespace == "" || o.namespace == "" || t.namespace == o.namespace)
}

func (t target) String() string {
	s := t.name
	if t.namespace != "" {
		s = t.namespace + "/" + s
	}
	if t.kind != "" {
		s = t.kind + " " + s
	}
	return s
}

// matchTypes returns the match types that are set.
func matchTypes(m pacv2beta3.PolicyConfigTarget) []matchType {
	var types []matchType
	if len(m.Workspaces) > 0 {
		mt := matchType{name: "workspaces"}
		for _, w := range m.Workspaces {
			mt.targets = append(mt.targets, target{name: w})
		}
		types = append(types, mt)
	}
	if len(m.Namespaces) > 0 {
		mt := matchType{name: "namespaces"}
		for _, ns := range m.Namespaces {
			mt.targets = append(mt.targets, target{name: ns})
		}
		types = append(types, mt)
	}
	if len(m.Applications) > 0 {
		mt := matchType{name: "apps"}
		for _, app := range m.Applications {
			mt.targets = append(mt.targets, target{kind: app.Kind, name: app.Name, namespace: app.Namespace})
		}
		types = append(types, mt)
	}
	if len(m.Resources) > 0 {
		mt := matchType{name: "resources"}
		for _, r := range m.Resources {
			mt.targets = append(mt.targets, target{kind: r.Kind, name: r.Name, namespace: r.Namespace})
		}
		types = append(types, mt)
	}
	return types
}

func validateMatchTypes(cfg *pacv2beta3.PolicyConfig) field.ErrorList {
	matchPath := field.NewPath("spec", "match")
	types := matchTypes(cfg.Spec.Match)
	switch len(types) {
	case 0:
		return field.ErrorList{field.Required(matchPath, "set exactly one of workspaces, namespaces, apps or resources")}
	case 1:
		return nil
	}
	names := make([]string, 0, len(types))
	for _, t := range types {
		names = append(names, t.name)
	}
	return field.ErrorList{field.Invalid(matchPath, strings.Join(names, ", "),
		"set exactly one of workspaces, namespaces, apps or resources; use one PolicyConfig per match type")}
}

// ValidateOverlaps returns an error for every target of cfg that another
// PolicyConfig of the same match type also targets while setting a
// parameter of a policy that cfg sets too. cfg must have exactly one match
// type; others may include cfg itself, which is skipped.
func ValidateOverlaps(cfg *pacv2beta3.PolicyConfig, others []pacv2beta3.PolicyConfig) field.ErrorList {
	types := matchTypes(cfg.Spec.Match)
	if len(types) != 1 {
		return nil
	}
	own := types[0]
	var errs field.ErrorList
	sorted := append([]pacv2beta3.PolicyConfig(nil), others...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		other := &sorted[i]
		if other.Name == cfg.Name {
			continue
		}
		otherTypes := matchTypes(other.Spec.Match)
		if len(otherTypes) != 1 || otherTypes[0].name != own.name {
			continue
		}
		shared := sharedParameters(cfg, other)
		if len(shared) == 0 {
			continue
		}
		for ti, t := range own.targets {
			for _, o := range otherTypes[0].targets {
				if !t.overlaps(o) {
					continue
				}
				errs = append(errs, field.Invalid(field.NewPath("spec", "match", own.name).Index(ti), t.String(),
					fmt.Sprintf("PolicyConfig %s also targets %s and sets %s; give each parameter one value per target",
						other.Name, o, strings.Join(shared, ", "))))
			}
		}
	}
	return errs
}

// sharedParameters returns "policyID.parameter" for every parameter that
// both configs set, sorted.
func sharedParameters(a, b *pacv2beta3.PolicyConfig) []string {
	var shared []string
	for policyID, aConfig := range a.Spec.Config {
		bConfig, ok := b.Spec.Config[policyID]
		if !ok {
			continue
		}
		for name := range aConfig.Parameters {
			if _, ok := bConfig.Parameters[name]; ok {
				shared = append(shared, policyID+"."+name)
			}
		}
	}
	sort.Strings(shared)
	return shared
}
