package pac

import (
	"context"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// PolicyValidator is the admission handler of PolicyPath. It rejects a
// Policy whose Rego does not compile or defines no violation rule, whose
// spec.id differs from metadata.name, whose parameter defaults do not match
// their type, or that declares a parameter twice.
type PolicyValidator struct {
	decoder admission.Decoder
}

// NewPolicyValidator returns the handler; the scheme must contain both
// pac.weave.works versions, as kube.NewScheme does.
func NewPolicyValidator(scheme *runtime.Scheme) *PolicyValidator {
	return &PolicyValidator{decoder: admission.NewDecoder(scheme)}
}

var _ admission.Handler = &PolicyValidator{}

// Handle validates CREATE and UPDATE requests and allows the rest. An UPDATE
// that leaves the spec unchanged is allowed, so that metadata edits and
// finalizer removal work on a policy stored before a check existed.
func (v *PolicyValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	p, err := v.decode(req, req.Object)
	if err != nil {
		return badRequest(err)
	}
	if req.Operation == admissionv1.Update {
		old, err := v.decode(req, req.OldObject)
		if err != nil {
			return badRequest(err)
		}
		if equality.Semantic.DeepEqual(old.Spec, p.Spec) {
			return admission.Allowed("spec unchanged")
		}
	}
	if errs := ValidatePolicy(p); len(errs) > 0 {
		return invalid(pacv2beta3.GroupVersion.WithKind("Policy").GroupKind(), p.Name, errs)
	}
	return admission.Allowed("")
}

func (v *PolicyValidator) decode(req admission.Request, raw runtime.RawExtension) (*pacv2beta3.Policy, error) {
	return decodeAs(v.decoder, req.Kind, raw,
		func() runtime.Object { return &pacv2beta2.Policy{} },
		func() *pacv2beta3.Policy { return &pacv2beta3.Policy{} })
}

// ValidatePolicy returns what is wrong with the policy that the schema does
// not check. The CLI uses it too.
func ValidatePolicy(p *pacv2beta3.Policy) field.ErrorList {
	var errs field.ErrorList
	specPath := field.NewPath("spec")

	if p.Spec.ID != "" && p.Name != "" && p.Spec.ID != p.Name {
		errs = append(errs, field.Invalid(specPath.Child("id"), p.Spec.ID,
			fmt.Sprintf("must be equal to metadata.name %q, which is the policy ID", p.Name)))
	}
	errs = append(errs, validateParameters(specPath.Child("parameters"), p.Spec.Parameters)...)

	if _, err := policy.Compile(p); err != nil {
		errs = append(errs, codeError(specPath.Child("code"), err))
	}
	return errs
}

func validateParameters(path *field.Path, params []pacv2beta3.PolicyParameters) field.ErrorList {
	var errs field.ErrorList
	seen := make(map[string]bool, len(params))
	for i, param := range params {
		paramPath := path.Index(i)
		if seen[param.Name] {
			errs = append(errs, field.Duplicate(paramPath.Child("name"), param.Name))
		}
		seen[param.Name] = true

		value, set, err := policy.DecodeParameterValue(param.Value)
		if err != nil {
			errs = append(errs, field.Invalid(paramPath.Child("value"), field.OmitValueType{}, err.Error()))
			continue
		}
		if !set {
			continue
		}
		if err := policy.CheckParameterType(param.Type, value); err != nil {
			errs = append(errs, field.Invalid(paramPath.Child("value"), field.OmitValueType{},
				fmt.Sprintf("default of parameter %q: %v", param.Name, err)))
		}
	}
	return errs
}

// codeError turns a compile error into a field error on spec.code. The
// code itself is left out of the message because it can be long.
func codeError(path *field.Path, err error) *field.Error {
	var compileErr *policy.CompileError
	if errors.As(err, &compileErr) && compileErr.Reason == pacv2beta3.PolicyMissingViolationRuleReason {
		return field.Invalid(path, field.OmitValueType{}, compileErr.Message)
	}
	return field.Invalid(path, field.OmitValueType{}, "Rego does not compile: "+err.Error())
}
