// Package tenantsfile reads the tenants file of the Weave GitOps
// `gitops create tenants` command, checks it, and turns each tenant into a
// Workspace. A file written for Weave GitOps is accepted unchanged.
package tenantsfile

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// File is a tenants file.
type File struct {
	// ServiceAccount, when set, names the ServiceAccount of every tenant.
	// Without it each tenant's ServiceAccount is named after the tenant.
	ServiceAccount *ServiceAccount `json:"serviceAccount,omitempty"`
	// Tenants are the tenants, each becoming one Workspace.
	Tenants []Tenant `json:"tenants"`
}

// ServiceAccount is the ServiceAccount that Flux impersonates in the
// tenants' namespaces.
type ServiceAccount struct {
	Name string `json:"name"`
}

// Tenant is one team: its namespaces, labels, RBAC, and the sources and
// clusters it may deploy from and to.
type Tenant struct {
	Name                string              `json:"name"`
	Namespaces          []string            `json:"namespaces"`
	Labels              map[string]string   `json:"labels,omitempty"`
	AllowedRepositories []AllowedRepository `json:"allowedRepositories,omitempty"`
	AllowedClusters     []AllowedCluster    `json:"allowedClusters,omitempty"`
	TeamRBAC            *TeamRBAC           `json:"teamRBAC,omitempty"`
	DeploymentRBAC      *DeploymentRBAC     `json:"deploymentRBAC,omitempty"`
}

// AllowedRepository is a Flux source that the tenant may use.
type AllowedRepository struct {
	// Kind is GitRepository, OCIRepository, HelmRepository or Bucket.
	Kind string `json:"kind"`
	URL  string `json:"url"`
}

// AllowedCluster is a kubeconfig Secret that the tenant may deploy with.
type AllowedCluster struct {
	KubeConfig string `json:"kubeConfig"`
}

// TeamRBAC is the access of the tenant's groups to its namespaces.
type TeamRBAC struct {
	GroupNames []string            `json:"groupNames"`
	Rules      []rbacv1.PolicyRule `json:"rules"`
}

// DeploymentRBAC is the access of the tenant's ServiceAccount, which Flux
// impersonates, to its namespaces.
type DeploymentRBAC struct {
	BindRoles []RoleReference     `json:"bindRoles,omitempty"`
	Rules     []rbacv1.PolicyRule `json:"rules,omitempty"`
}

// RoleReference names a Role or ClusterRole to bind.
type RoleReference struct {
	Name string `json:"name"`
	// Kind is Role or ClusterRole.
	Kind string `json:"kind"`
}
