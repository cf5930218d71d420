// Package pac holds the validating admission webhooks of the policy kinds:
// the checks that the CRD schema cannot express, such as whether a policy's
// Rego compiles or whether two PolicyConfigs set the same parameter for the
// same objects. Both handlers accept v2beta2 and v2beta3 objects, which share
// one schema.
package pac

import (
	"encoding/json"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// Webhook paths of the handlers on the manager's webhook server.
const (
	PolicyPath       = "/validate/policy"
	PolicyConfigPath = "/validate/policyconfig"
)

// decodeAs decodes raw into the type of the request's version and returns
// it as the v2beta3 type, by a JSON round trip: the two versions share one
// schema. newV2beta2 and newV2beta3 return empty objects of the kind.
func decodeAs[T runtime.Object](decoder admission.Decoder, kind metav1.GroupVersionKind, raw runtime.RawExtension,
	newV2beta2 func() runtime.Object, newV2beta3 func() T,
) (T, error) {
	out := newV2beta3()
	switch kind.Version {
	case pacv2beta3.GroupVersion.Version:
		if err := decoder.DecodeRaw(raw, out); err != nil {
			return out, fmt.Errorf("decode %s %s: %w", kind.Kind, kind.Version, err)
		}
		return out, nil
	case pacv2beta2.GroupVersion.Version:
		in := newV2beta2()
		if err := decoder.DecodeRaw(raw, in); err != nil {
			return out, fmt.Errorf("decode %s %s: %w", kind.Kind, kind.Version, err)
		}
		data, err := json.Marshal(in)
		if err != nil {
			return out, fmt.Errorf("convert %s v2beta2 to v2beta3: %w", kind.Kind, err)
		}
		if err := json.Unmarshal(data, out); err != nil {
			return out, fmt.Errorf("convert %s v2beta2 to v2beta3: %w", kind.Kind, err)
		}
		return out, nil
	}
	return out, fmt.Errorf("unsupported version %s of %s: this webhook handles v2beta2 and v2beta3", kind.Version, kind.Kind)
}

// invalid denies the request with the field errors, in the form kubectl
// prints for schema errors: `The Policy "x" is invalid: spec.code: ...`.
func invalid(kind schema.GroupKind, name string, errs field.ErrorList) admission.Response {
	status := apierrors.NewInvalid(kind, name, errs).Status()
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &status,
	}}
}

// badRequest rejects a request that the handler cannot decode.
func badRequest(err error) admission.Response {
	return admission.Errored(http.StatusBadRequest, err)
}
