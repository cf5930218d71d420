package v1alpha1

// Condition types of a Workspace.
const (
	// ReadyCondition summarises the other conditions: True when the
	// namespaces, RBAC, policies and Flux impersonation are all in place.
	ReadyCondition = "Ready"

	// NamespacesReadyCondition: every namespace exists, carries the tenant
	// label and is claimed by this Workspace alone.
	NamespacesReadyCondition = "NamespacesReady"

	// RBACReadyCondition: the ServiceAccounts, Roles and RoleBindings exist.
	RBACReadyCondition = "RBACReady"

	// PoliciesReadyCondition: the tenancy policies exist and match the spec.
	PoliciesReadyCondition = "PoliciesReady"

	// FluxImpersonationCondition: every Kustomization and HelmRelease in the
	// namespaces uses the Workspace ServiceAccount.
	FluxImpersonationCondition = "FluxImpersonation"

	// CompliantCondition: the last audit found no violation in the
	// namespaces.
	CompliantCondition = "Compliant"
)

// Reasons shared by several conditions.
const (
	// ReconciledReason: the aspect matches the spec.
	ReconciledReason = "Reconciled"

	// ProgressingReason: the operator is still creating or updating objects.
	ProgressingReason = "Progressing"

	// ApplyFailedReason: the API server rejected an object; the message names
	// it and the error.
	ApplyFailedReason = "ApplyFailed"

	// DeletingReason: the Workspace is being deleted.
	DeletingReason = "Deleting"
)

// Reasons of NamespacesReady.
const (
	// NamespaceConflictReason: another Workspace claims a namespace of this
	// one; that namespace is left alone until one of them lets it go.
	NamespaceConflictReason = "NamespaceConflict"

	// NamespaceTerminatingReason: a namespace is being deleted, so it cannot
	// be adopted until it is gone and created again.
	NamespaceTerminatingReason = "NamespaceTerminating"
)

// Reasons of RBACReady.
const (
	// ClusterRoleNotFoundReason: a ClusterRole to bind does not exist.
	ClusterRoleNotFoundReason = "ClusterRoleNotFound"

	// ClusterRoleNotAllowedReason: a ClusterRole to bind is not in the
	// manager's allow-list (--allowed-cluster-roles).
	ClusterRoleNotAllowedReason = "ClusterRoleNotAllowed"
)

// Reasons of FluxImpersonation.
const (
	// ServiceAccountMismatchReason: a Kustomization or HelmRelease names a
	// ServiceAccount other than the Workspace's; it is left unchanged.
	ServiceAccountMismatchReason = "ServiceAccountMismatch"

	// FluxNotInstalledReason: the Flux Kustomization and HelmRelease CRDs are
	// not installed; patching starts when they appear.
	FluxNotInstalledReason = "FluxNotInstalled"

	// WaitingForFluxObjectsReason: the Workspace is being deleted and waits
	// until the Flux objects in its namespaces are gone, so that Flux can
	// still impersonate the ServiceAccount while it removes what it applied.
	WaitingForFluxObjectsReason = "WaitingForFluxObjects"
)

// Reasons of Compliant.
const (
	// NoViolationsReason: the last audit found nothing in the namespaces.
	NoViolationsReason = "NoViolations"

	// ViolationsFoundReason: the last audit found violations; the message
	// has the count and the worst severity.
	ViolationsFoundReason = "ViolationsFound"

	// NotAuditedReason: no audit has covered the namespaces yet.
	NotAuditedReason = "NotAudited"
)

// Labels and annotations that the operator sets.
const (
	// TenantLabel carries the Workspace name on its namespaces; Flux and
	// Weave GitOps read this key.
	TenantLabel = "toolkit.fluxcd.io/tenant"

	// ManagedByLabel marks the objects that the operator created; it prunes
	// only objects with this label.
	ManagedByLabel = "app.kubernetes.io/managed-by"

	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "trusted-delivery"

	// WorkspaceLabel names the Workspace that owns an object.
	WorkspaceLabel = "tenancy.weave.works/workspace"

	// Finalizer holds a Workspace until its Flux objects are gone and its
	// RBAC and policies are removed.
	Finalizer = "tenancy.weave.works/finalizer"
)
