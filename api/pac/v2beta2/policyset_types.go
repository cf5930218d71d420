package v2beta2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicySetSpec selects policies for one mode.
type PolicySetSpec struct {
	// Mode the selected policies are active in: audit, admission or
	// tf-admission. When no PolicySet of a mode exists, every policy is active
	// in that mode; otherwise only the policies that some PolicySet of that
	// mode selects.
	// +required
	// +kubebuilder:validation:Enum=audit;admission;tf-admission
	Mode string `json:"mode"`

	// Filters select policies. A policy is selected when it matches any
	// filter list that is set; a PolicySet with no filters selects nothing.
	// +optional
	Filters PolicySetFilters `json:"filters,omitempty"`
}

// PolicySetFilters lists what a PolicySet selects. Within a list any entry
// matches.
type PolicySetFilters struct {
	// IDs are policy IDs.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=253
	IDs []string `json:"ids,omitempty"`

	// Categories select policies by spec.category.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=253
	Categories []string `json:"categories,omitempty"`

	// Severities select policies by spec.severity.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:Enum=low;medium;high
	Severities []string `json:"severities,omitempty"`

	// Standards select policies by the ID of one of their spec.standards.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=253
	Standards []string `json:"standards,omitempty"`

	// Tags select policies that carry one of these spec.tags.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=253
	Tags []string `json:"tags,omitempty"`
}

// PolicySetStatus is the observed state of a PolicySet.
type PolicySetStatus struct {
	// ObservedGeneration is the generation last resolved.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is true when the filters select at least one policy.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Policies are the IDs of the selected policies.
	// +optional
	// +listType=set
	Policies []string `json:"policies,omitempty"`

	// PolicyCount is the number of selected policies.
	// +optional
	PolicyCount int32 `json:"policyCount,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Cluster,shortName=pset,categories=trusted-delivery
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Policies",type=integer,JSONPath=`.status.policyCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PolicySet selects the policies that are active in one mode: audit,
// admission or tf-admission.
type PolicySet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PolicySetSpec `json:"spec"`

	// +optional
	Status PolicySetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PolicySetList contains a list of PolicySet.
type PolicySetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicySet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PolicySet{}, &PolicySetList{})
}
