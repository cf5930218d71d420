package v2beta3

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicyConfigSpec overrides policy parameters for the objects it matches.
type PolicyConfigSpec struct {
	// Match selects where the overrides apply. Exactly one of workspaces,
	// namespaces, apps or resources is set. When several PolicyConfigs set the
	// same parameter for an object, the most specific match wins:
	// resources over apps over namespaces over workspaces.
	// +required
	Match PolicyConfigTarget `json:"match"`

	// Config maps a policy ID to the parameter values to use for it.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=256
	Config map[string]PolicyConfigConfig `json:"config"`
}

// PolicyConfigTarget selects objects by workspace, namespace, owning Flux
// application or identity. Exactly one field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.workspaces) ? 1 : 0) + (has(self.namespaces) ? 1 : 0) + (has(self.apps) ? 1 : 0) + (has(self.resources) ? 1 : 0) == 1",message="exactly one of workspaces, namespaces, apps or resources must be set"
type PolicyConfigTarget struct {
	// Workspaces whose namespaces the overrides apply to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	Workspaces []string `json:"workspaces,omitempty"`

	// Namespaces whose objects the overrides apply to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// Apps are Flux Kustomizations or HelmReleases; the overrides apply to the
	// objects they manage, found by the Flux ownership labels.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	Applications []PolicyTargetApplication `json:"apps,omitempty"`

	// Resources are single objects, by kind, name and namespace.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	Resources []PolicyTargetResource `json:"resources,omitempty"`
}

// PolicyTargetApplication names a Flux application.
type PolicyTargetApplication struct {
	// Kind of the application: Kustomization or HelmRelease.
	// +required
	// +kubebuilder:validation:Enum=Kustomization;HelmRelease
	Kind string `json:"kind"`

	// Name of the application object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the application object. Empty matches any namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// PolicyTargetResource names one object.
type PolicyTargetResource struct {
	// Kind of the object, for example Deployment.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the object. Empty for cluster-scoped objects, or to match
	// any namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// PolicyConfigConfig holds the parameter overrides for one policy.
type PolicyConfigConfig struct {
	// Parameters maps a parameter name to its value.
	// +required
	// +kubebuilder:validation:MaxProperties=128
	Parameters map[string]apiextensionsv1.JSON `json:"parameters"`
}

// PolicyConfigStatus is the observed state of a PolicyConfig.
type PolicyConfigStatus struct {
	// ObservedGeneration is the generation last checked.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is true when every policy in config exists and
	// declares every parameter that is set for it.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// MissingPolicies are policy IDs in config that name no Policy.
	// +optional
	// +listType=set
	MissingPolicies []string `json:"missingPolicies,omitempty"`

	// UnknownParameters are "policyID.parameter" entries in config that the
	// policy does not declare.
	// +optional
	// +listType=set
	UnknownParameters []string `json:"unknownParameters,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Cluster,shortName=pcfg,categories=trusted-delivery
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PolicyConfig overrides the parameters of policies for some workspaces,
// namespaces, Flux applications or single objects.
type PolicyConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PolicyConfigSpec `json:"spec"`

	// +optional
	Status PolicyConfigStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PolicyConfigList contains a list of PolicyConfig.
type PolicyConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PolicyConfig{}, &PolicyConfigList{})
}
