package v2beta2

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Severity values of a policy.
const (
	SeverityLow    = "low"
	SeverityMedium = "medium"
	SeverityHigh   = "high"
)

// Providers of the objects that a policy checks.
const (
	ProviderKubernetes = "kubernetes"
	ProviderTerraform  = "terraform"
)

// Parameter types that a policy may declare.
const (
	ParameterTypeString  = "string"
	ParameterTypeInteger = "integer"
	ParameterTypeNumber  = "number"
	ParameterTypeBoolean = "boolean"
	ParameterTypeArray   = "array"
	ParameterTypeObject  = "object"
)

// PolicySpec is one rule: Rego code with its parameters, the objects it
// targets and how a violation is handled. The JSON names follow the Weave GitOps
// policy format, so manifests written for it apply unchanged.
type PolicySpec struct {
	// ID is the policy ID as written in Weave GitOps manifests. The policy ID is
	// metadata.name; when id is set it must be equal to metadata.name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ID string `json:"id,omitempty"`

	// Name is a human readable name shown in violation messages and reports.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Enabled is accepted for compatibility with v2beta2 manifests and ignored.
	// A policy takes part in a mode when a PolicySet selects it, or when no
	// PolicySet of that mode exists.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Enforce makes a violation deny the admission request. When false, the
	// violation is returned to the client as an admission warning and recorded.
	// +optional
	// +kubebuilder:default=true
	Enforce *bool `json:"enforce,omitempty"`

	// Description is what the policy checks and why.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// HowToSolve is the fix for the owner of a violating object. It is part
	// of every denial message.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	HowToSolve string `json:"how_to_solve,omitempty"`

	// Category groups policies in reports and PolicySet filters, for example
	// weave.categories.pod-security.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Category string `json:"category,omitempty"`

	// Tags are free-form labels that PolicySet filters can select.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Tags []string `json:"tags,omitempty"`

	// Severity of a violation: low, medium or high.
	// +required
	// +kubebuilder:validation:Enum=low;medium;high
	Severity string `json:"severity"`

	// Standards lists the compliance standards and controls that the policy
	// implements.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Standards []PolicyStandard `json:"standards,omitempty"`

	// Targets selects the objects that the policy checks.
	// +optional
	Targets PolicyTargets `json:"targets,omitempty"`

	// Parameters declares the values that the Rego code reads from
	// input.parameters, with their defaults. PolicyConfigs override them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Parameters []PolicyParameters `json:"parameters,omitempty"`

	// Code is the Rego module. It must define the set "violation"; each element
	// is an occurrence whose msg, violating_key and recommended_value fields
	// are read when present. Rego v0 and v1 syntax are both accepted.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Code string `json:"code"`

	// Provider names the kind of objects the policy checks: kubernetes
	// (objects sent to the API server) or terraform (Terraform plans).
	// +optional
	// +kubebuilder:default=kubernetes
	// +kubebuilder:validation:Enum=kubernetes;terraform
	Provider string `json:"provider,omitempty"`

	// Mutate marks a policy whose violations carry a recommended value that a
	// mutating webhook may apply.
	// +optional
	Mutate bool `json:"mutate,omitempty"`

	// Exclude lists objects that the policy never checks, even when they
	// match the targets.
	// +optional
	Exclude PolicyExclusions `json:"exclude,omitempty"`
}

// PolicyStandard is a compliance standard and the controls of it that a policy
// implements.
type PolicyStandard struct {
	// ID of the standard, for example weave.standards.cis-benchmark.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ID string `json:"id"`

	// Controls of the standard that the policy implements.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=253
	Controls []string `json:"controls,omitempty"`
}

// PolicyTargets selects objects by kind, namespace and labels. An empty list
// matches everything on that axis.
type PolicyTargets struct {
	// Kinds are object kinds such as Deployment. Empty matches every kind.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=63
	Kinds []string `json:"kinds,omitempty"`

	// Labels is a list of label maps; an object matches when it carries every
	// label of at least one map. A value of "*" matches any value of that key.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Labels []map[string]string `json:"labels,omitempty"`

	// Namespaces restricts the policy to objects in these namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`
}

// PolicyParameters declares one parameter of a policy.
type PolicyParameters struct {
	// Name of the parameter, as read by the Rego code from input.parameters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Type of the value: string, integer, number, boolean, array or object.
	// Values from PolicyConfigs are checked against it.
	// +required
	// +kubebuilder:validation:Enum=string;integer;number;boolean;array;object
	Type string `json:"type"`

	// Value is the default value. Null, as Weave GitOps manifests often
	// write it, means no default.
	// +optional
	// +nullable
	Value *apiextensionsv1.JSON `json:"value,omitempty"`

	// Required parameters must have a value, from the default or a
	// PolicyConfig; a policy missing one is not Ready and checks nothing.
	// +optional
	Required bool `json:"required,omitempty"`
}

// PolicyExclusions lists objects that a policy never checks.
type PolicyExclusions struct {
	// Namespaces whose objects are not checked.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// Resources not checked, each as "namespace/name", or "name" for a
	// cluster-scoped object.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=317
	Resources []string `json:"resources,omitempty"`

	// Labels is a list of label maps; an object that carries every label of
	// one map is not checked. A value of "*" matches any value of that key.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Labels []map[string]string `json:"labels,omitempty"`
}

// PolicyStatus is the observed state of a Policy.
type PolicyStatus struct {
	// ObservedGeneration is the generation last compiled and validated.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready reports whether the code compiles and the parameters
	// are valid, so that the policy is evaluated.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Modes in which the policy is active: audit, admission, tf-admission.
	// +optional
	// +listType=set
	Modes []string `json:"modes,omitempty"`

	// ViolationCount is the number of violations found by the last audit.
	// +optional
	ViolationCount *int64 `json:"violationCount,omitempty"`

	// LastAuditTime is when the last audit that evaluated this policy ended.
	// +optional
	LastAuditTime *metav1.Time `json:"lastAuditTime,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pol,categories=trusted-delivery
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.severity`
// +kubebuilder:printcolumn:name="Category",type=string,JSONPath=`.spec.category`
// +kubebuilder:printcolumn:name="Enforce",type=boolean,JSONPath=`.spec.enforce`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violationCount`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.id) || self.spec.id == '' || self.spec.id == self.metadata.name",message="spec.id must be equal to metadata.name, which is the policy ID"

// Policy is one Rego rule that is enforced at admission, checked by audit
// scans and run by the CLI. Its ID is metadata.name.
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PolicySpec `json:"spec"`

	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PolicyList contains a list of Policy.
type PolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Policy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Policy{}, &PolicyList{})
}
