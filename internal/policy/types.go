// Package policy is the policy engine: it compiles Rego policies once per
// generation, selects the policies that apply to an object in a mode, merges
// their parameters with PolicyConfig overrides and evaluates them with a
// deadline. It makes no API calls, so the admission webhook, the audit and the
// CLI share it.
package policy

import (
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Mode is where a policy is evaluated.
type Mode string

// Modes of evaluation, matching PolicySet spec.mode.
const (
	ModeAudit       Mode = "audit"
	ModeAdmission   Mode = "admission"
	ModeTFAdmission Mode = "tf-admission"
)

// OperationAudit is the review operation of audit scans and the CLI, which
// check an object without an admission request.
const OperationAudit = "AUDIT"

// Review is input.review: an admission request, or one built from a manifest
// for audit and the CLI.
type Review struct {
	// Operation is CREATE, UPDATE, DELETE, CONNECT or AUDIT.
	Operation string `json:"operation"`
	// UserInfo is the requesting user; empty outside admission.
	UserInfo authenticationv1.UserInfo `json:"userInfo"`
	// Namespace of the object; empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name of the object.
	Name string `json:"name,omitempty"`
	// Kind of the object.
	Kind ReviewKind `json:"kind"`
	// Object is the object as sent, or as stored for DELETE.
	Object map[string]any `json:"object,omitempty"`
	// OldObject is the stored object on UPDATE and DELETE.
	OldObject map[string]any `json:"oldObject,omitempty"`
	// DryRun is true for requests that must not have side effects.
	DryRun bool `json:"dryRun"`
}

// ReviewKind is the group, version and kind of the reviewed object.
type ReviewKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// Subject is what an evaluation needs to know about an object and where it
// lives, beyond the review itself.
type Subject struct {
	// Object is the object to check; it decides target and exclude matching.
	Object *unstructured.Unstructured
	// NamespaceLabels are the labels of the object's namespace; the tenant
	// label in them names the object's Workspace.
	NamespaceLabels map[string]string
}

// Occurrence is one element of a policy's violation set.
type Occurrence struct {
	// Message is the element's msg field.
	Message string `json:"msg"`
	// ViolatingKey is the element's violating_key field, a path into the object.
	ViolatingKey string `json:"violating_key,omitempty"`
	// RecommendedValue is the element's recommended_value field.
	RecommendedValue any `json:"recommended_value,omitempty"`
}

// ParameterValue is a parameter as passed to the policy, with where it came
// from.
type ParameterValue struct {
	Value any `json:"value"`
	// ConfigRef is the PolicyConfig that supplied the value; empty for the
	// policy's own default.
	ConfigRef string `json:"configRef,omitempty"`
}

// ObjectRef identifies the checked object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// Result is the outcome of one policy on one object.
type Result struct {
	PolicyID   string   `json:"policyId"`
	PolicyName string   `json:"policyName"`
	Severity   string   `json:"severity"`
	Category   string   `json:"category,omitempty"`
	HowToSolve string   `json:"howToSolve,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Standards  []string `json:"standards,omitempty"`
	// Enforced is the policy's spec.enforce: a violation denies admission.
	Enforced bool `json:"enforced"`
	// Object is the checked object.
	Object ObjectRef `json:"object"`
	// Occurrences are the elements of the violation set; empty when the
	// object complies.
	Occurrences []Occurrence `json:"occurrences,omitempty"`
	// Parameters are the values passed as input.parameters.
	Parameters map[string]ParameterValue `json:"parameters,omitempty"`
	// Err is set when the policy could not be evaluated (not compiled,
	// invalid parameters, timed out, runtime error). Such a result is never
	// a violation.
	Err error `json:"-"`
	// Duration is how long the evaluation took.
	Duration time.Duration `json:"-"`
}

// Violated reports whether the object violates the policy.
func (r *Result) Violated() bool {
	return r.Err == nil && len(r.Occurrences) > 0
}
