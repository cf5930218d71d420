package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Deletion policies for a Workspace's namespaces.
const (
	// DeletionPolicyOrphan keeps the namespaces and removes their tenant label.
	DeletionPolicyOrphan = "Orphan"
	// DeletionPolicyDelete deletes the namespaces with everything in them.
	DeletionPolicyDelete = "Delete"
)

// Match types of an allowed repository URL.
const (
	MatchExact  = "Exact"
	MatchPrefix = "Prefix"
)

// WorkspaceSpec describes a tenant: its namespaces, the identity Flux uses to
// deploy into them, who may work in them and what they may deploy from.
type WorkspaceSpec struct {
	// Namespaces of the tenant. They are created when missing and adopted when
	// they exist and no other Workspace claims them.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces"`

	// ServiceAccountName is the ServiceAccount created in each namespace for
	// Flux to impersonate. Defaults to the Workspace name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Labels are added to every object the Workspace creates.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="label keys must be qualified names: an optional DNS subdomain prefix and '/', then at most 63 alphanumeric characters, '-', '_' or '.'"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// DeploymentRBAC is the set of permissions of the Workspace ServiceAccount,
	// and so of Flux, in the tenant's namespaces. When unset, the ClusterRole
	// admin is bound.
	// +optional
	DeploymentRBAC *DeploymentRBAC `json:"deploymentRBAC,omitempty"`

	// TeamRBAC is the set of permissions of the tenant's people in its
	// namespaces.
	// +optional
	TeamRBAC *TeamRBAC `json:"teamRBAC,omitempty"`

	// AllowedRepositories are the Flux sources that the tenant may use. An
	// empty list allows every source; a non-empty list denies the rest.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	AllowedRepositories []AllowedRepository `json:"allowedRepositories,omitempty"`

	// AllowedClusters are the kubeconfig Secrets or ConfigMaps that the
	// tenant's Kustomizations and HelmReleases may deploy to. An empty list
	// allows no remote cluster.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	AllowedClusters []AllowedCluster `json:"allowedClusters,omitempty"`

	// DeletionPolicy is the fate of the namespaces when the Workspace is
	// deleted: Orphan keeps them without the tenant label, Delete deletes
	// them.
	// +optional
	// +kubebuilder:default=Orphan
	// +kubebuilder:validation:Enum=Orphan;Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`

	// ResourceQuota, when set, is created in each namespace.
	// +optional
	ResourceQuota *corev1.ResourceQuotaSpec `json:"resourceQuota,omitempty"`

	// LimitRange, when set, is created in each namespace.
	// +optional
	LimitRange *corev1.LimitRangeSpec `json:"limitRange,omitempty"`
}

// LabelValue is the value of a Kubernetes label: at most 63 characters,
// alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric
// character, or empty.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// DeploymentRBAC grants the Workspace ServiceAccount its permissions in each
// namespace. ClusterRole, Rules and BindRoles may be combined.
type DeploymentRBAC struct {
	// ClusterRole to bind in each namespace. It must be allowed by the
	// manager's --allowed-cluster-roles flag. Defaults to admin when neither
	// Rules nor BindRoles is set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClusterRole string `json:"clusterRole,omitempty"`

	// Rules of a Role created in each namespace and bound to the
	// ServiceAccount.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	Rules []rbacv1.PolicyRule `json:"rules,omitempty"`

	// BindRoles are existing Roles (in each namespace) or ClusterRoles to bind.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	BindRoles []RoleReference `json:"bindRoles,omitempty"`
}

// RoleReference names a Role or ClusterRole.
type RoleReference struct {
	// Kind is Role or ClusterRole.
	// +required
	// +kubebuilder:validation:Enum=Role;ClusterRole
	Kind string `json:"kind"`

	// Name of the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TeamRBAC grants the tenant's people access to its namespaces.
// +kubebuilder:validation:XValidation:rule="has(self.groups) || has(self.users)",message="teamRBAC needs at least one of groups or users"
// +kubebuilder:validation:XValidation:rule="has(self.rules) || has(self.clusterRole)",message="teamRBAC needs rules or a clusterRole"
type TeamRBAC struct {
	// Groups to bind, as the API server authenticates them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Groups []string `json:"groups,omitempty"`

	// Users to bind, as the API server authenticates them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Users []string `json:"users,omitempty"`

	// Rules of a Role created in each namespace for the team.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	Rules []rbacv1.PolicyRule `json:"rules,omitempty"`

	// ClusterRole bound to the team in each namespace. It must be allowed by
	// the manager's --allowed-cluster-roles flag.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClusterRole string `json:"clusterRole,omitempty"`
}

// AllowedRepository is a Flux source that the tenant may use.
type AllowedRepository struct {
	// Kind of the Flux source.
	// +required
	// +kubebuilder:validation:Enum=GitRepository;OCIRepository;HelmRepository;Bucket
	Kind string `json:"kind"`

	// URL of the source. Matching ignores the scheme, a trailing slash and
	// a trailing ".git".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`

	// Match is Exact (the default) or Prefix, which allows every URL that
	// starts with this one at a path boundary.
	// +optional
	// +kubebuilder:default=Exact
	// +kubebuilder:validation:Enum=Exact;Prefix
	Match string `json:"match,omitempty"`
}

// AllowedCluster is a kubeconfig that the tenant may deploy with.
type AllowedCluster struct {
	// KubeConfig is the name of the Secret or ConfigMap that holds the
	// kubeconfig, in the tenant's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	KubeConfig string `json:"kubeConfig"`

	// Kind of the object: Secret (the default) or ConfigMap.
	// +optional
	// +kubebuilder:default=Secret
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	Kind string `json:"kind,omitempty"`
}

// WorkspaceStatus is the observed state of a Workspace.
type WorkspaceStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready summarises NamespacesReady, RBACReady, PoliciesReady
	// and FluxImpersonation; Compliant reports audit violations in the
	// namespaces.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Namespaces reports the state of each namespace.
	// +optional
	// +listType=map
	// +listMapKey=name
	Namespaces []NamespaceStatus `json:"namespaces,omitempty"`

	// NamespaceCount is the number of namespaces that are Ready.
	// +optional
	NamespaceCount int32 `json:"namespaceCount,omitempty"`

	// Policies are the IDs of the tenancy policies generated for the
	// Workspace.
	// +optional
	// +listType=set
	Policies []string `json:"policies,omitempty"`

	// FluxObjects are the Kustomizations and HelmReleases in the namespaces
	// and their impersonation state.
	// +optional
	// +listType=atomic
	FluxObjects []FluxObjectStatus `json:"fluxObjects,omitempty"`

	// Violations is the number of audit violations in the namespaces.
	// +optional
	Violations *int64 `json:"violations,omitempty"`
}

// States of a Workspace namespace.
const (
	NamespaceStateReady       = "Ready"
	NamespaceStateConflict    = "Conflict"
	NamespaceStateTerminating = "Terminating"
	NamespaceStatePending     = "Pending"
)

// NamespaceStatus is the state of one namespace of a Workspace.
type NamespaceStatus struct {
	// Name of the namespace.
	Name string `json:"name"`

	// State is Ready, Pending, Conflict (claimed by another Workspace) or
	// Terminating.
	State string `json:"state"`

	// Message explains a state other than Ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// States of a Flux object in a Workspace namespace.
const (
	FluxObjectStateImpersonating = "Impersonating"
	FluxObjectStateMismatch      = "ServiceAccountMismatch"
)

// FluxObjectStatus is a Kustomization or HelmRelease in a Workspace namespace.
type FluxObjectStatus struct {
	// Kind is Kustomization or HelmRelease.
	Kind string `json:"kind"`

	// Namespace of the object.
	Namespace string `json:"namespace"`

	// Name of the object.
	Name string `json:"name"`

	// State is Impersonating when the object uses the Workspace
	// ServiceAccount, or ServiceAccountMismatch when it names another one.
	State string `json:"state"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ws,categories=trusted-delivery
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespaceCount`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1123 label (at most 63 lowercase alphanumeric characters or '-'), because it is used as a label value and a ServiceAccount name"

// Workspace is a tenant of the cluster: its namespaces, the ServiceAccount that
// Flux impersonates to deploy into them, its RBAC, and the sources and clusters
// it may use.
type Workspace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec WorkspaceSpec `json:"spec"`

	// +optional
	Status WorkspaceStatus `json:"status,omitempty"`
}

// ServiceAccount returns the name of the ServiceAccount that Flux impersonates
// in the Workspace's namespaces.
func (w *Workspace) ServiceAccount() string {
	if w.Spec.ServiceAccountName != "" {
		return w.Spec.ServiceAccountName
	}
	return w.Name
}

// +kubebuilder:object:root=true

// WorkspaceList contains a list of Workspace.
type WorkspaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workspace `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Workspace{}, &WorkspaceList{})
}
