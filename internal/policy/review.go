package policy

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ReviewFromObject builds the review of an object checked outside an
// admission request, by audit scans and the CLI: operation AUDIT, no user.
func ReviewFromObject(obj *unstructured.Unstructured) Review {
	gvk := obj.GroupVersionKind()
	return Review{
		Operation: OperationAudit,
		Namespace: obj.GetNamespace(),
		Name:      obj.GetName(),
		Kind:      ReviewKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Object:    obj.Object,
	}
}

// ReviewFromAdmission builds the review of an admission request and returns
// the object to match policies against: the new object, or the stored one
// for DELETE, whose request carries no new object.
func ReviewFromAdmission(req admissionv1.AdmissionRequest) (Review, *unstructured.Unstructured, error) {
	review := Review{
		Operation: string(req.Operation),
		UserInfo:  req.UserInfo,
		Namespace: req.Namespace,
		Name:      req.Name,
		Kind:      ReviewKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		DryRun:    req.DryRun != nil && *req.DryRun,
	}
	object, err := decodeRaw(req.Object.Raw)
	if err != nil {
		return Review{}, nil, fmt.Errorf("decode object of admission request %s: %w", req.UID, err)
	}
	oldObject, err := decodeRaw(req.OldObject.Raw)
	if err != nil {
		return Review{}, nil, fmt.Errorf("decode oldObject of admission request %s: %w", req.UID, err)
	}
	review.OldObject = oldObject
	review.Object = object
	if object == nil {
		review.Object = oldObject
	}
	if review.Object == nil {
		return Review{}, nil, fmt.Errorf("admission request %s for %s %s/%s carries neither object nor oldObject",
			req.UID, req.Kind.Kind, req.Namespace, req.Name)
	}
	return review, &unstructured.Unstructured{Object: review.Object}, nil
}

func decodeRaw(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// reviewValue converts the review to the Rego value of input.review once
// per request, so that the policies of the request share it. The fields and
// names are those of Review's JSON form.
func reviewValue(review Review) (ast.Value, error) {
	userInfo := map[string]any{"username": review.UserInfo.Username}

	if review.UserInfo.UID != "" {
		userInfo["uid"] = review.UserInfo.UID
	}
	if len(review.UserInfo.Groups) > 0 {
		userInfo["groups"] = review.UserInfo.Groups
	}
	if len(review.UserInfo.Extra) > 0 {
		extra := make(map[string]any, len(review.UserInfo.Extra))
		for key, values := range review.UserInfo.Extra {
			extra[key] = []string(values)
		}
		userInfo["extra"] = extra
	}

	m := map[string]any{
		"operation": review.Operation,
		"userInfo":  userInfo,
		"kind": map[string]any{
			"group":   review.Kind.Group,
			"version": review.Kind.Version,
			"kind":    review.Kind.Kind,
		},
		"dryRun": review.DryRun,
	}
	if review.Namespace != "" {
		m["namespace"] = review.Namespace
	}
	if review.Name != "" {
		m["name"] = review.Name
	}
	if review.Object != nil {
		m["object"] = review.Object
	}
	if review.OldObject != nil {
		m["oldObject"] = review.OldObject
	}

	value, err := ast.InterfaceToValue(m)
	if err != nil {
		return nil, fmt.Errorf("convert review of %s %s/%s to a Rego value: %w",
			review.Kind.Kind, review.Namespace, review.Name, err)
	}
	return value, nil
}

// inputValue builds the policy input: {"review": ..., "parameters": ...}.
func inputValue(review ast.Value, parameters ast.Value) ast.Value {
	return ast.NewObject(
		ast.Item(ast.InternedTerm("review"), ast.NewTerm(review)),
		ast.Item(ast.InternedTerm("parameters"), ast.NewTerm(parameters)),
	)
}

// parametersValue converts merged parameters to the Rego value of
// input.parameters.
func parametersValue(params map[string]ParameterValue) (ast.Value, error) {
	m := make(map[string]any, len(params))
	for name, p := range params {
		m[name] = p.Value
	}
	return ast.InterfaceToValue(m)
}
