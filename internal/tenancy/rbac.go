package tenancy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// maxNameLength is the longest object name that Generate produces, the
// limit of a DNS subdomain name.
const maxNameLength = 253

// ClusterRoleRef is a ClusterRole that a Workspace binds, with the field
// that names it.
type ClusterRoleRef struct {
	// Field is the spec field, for example spec.deploymentRBAC.clusterRole.
	Field *field.Path
	// Name of the ClusterRole.
	Name string
}

// BoundClusterRoles returns every ClusterRole that ws binds in its
// namespaces, including DefaultDeploymentClusterRole when the spec falls
// back to it, in spec order.
func BoundClusterRoles(ws *tenancyv1alpha1.Workspace) []ClusterRoleRef {
	deployment := field.NewPath("spec", "deploymentRBAC")
	var refs []ClusterRoleRef
	if role := deploymentClusterRole(ws); role != "" {
		refs = append(refs, ClusterRoleRef{Field: deployment.Child("clusterRole"), Name: role})
	}
	if spec := ws.Spec.DeploymentRBAC; spec != nil {
		for i, ref := range spec.BindRoles {
			if ref.Kind == "ClusterRole" {
				refs = append(refs, ClusterRoleRef{Field: deployment.Child("bindRoles").Index(i).Child("name"), Name: ref.Name})
			}
		}
	}
	if team := ws.Spec.TeamRBAC; team != nil && team.ClusterRole != "" {
		refs = append(refs, ClusterRoleRef{Field: field.NewPath("spec", "teamRBAC", "clusterRole"), Name: team.ClusterRole})
	}
	return refs
}

// ClusterRoleNotAllowedError is a Workspace that binds a ClusterRole outside
// the allow-list.
type ClusterRoleNotAllowedError struct {
	// Workspace is the name of the Workspace.
	Workspace string
	// Field is the spec field that names the ClusterRole, for example
	// spec.deploymentRBAC.clusterRole.
	Field string
	// ClusterRole is the name of the ClusterRole.
	ClusterRole string
	// Allowed is the allow-list.
	Allowed []string
}

func (e *ClusterRoleNotAllowedError) Error() string {
	return fmt.Sprintf("workspace %s: %s: ClusterRole %q is not allowed; use one of %s",
		e.Workspace, e.Field, e.ClusterRole, strings.Join(e.Allowed, ", "))
}

// CheckClusterRoles returns an error that wraps one
// *ClusterRoleNotAllowedError per ClusterRole of ws that is not in
// opts.AllowedClusterRoles, or nil.
func CheckClusterRoles(ws *tenancyv1alpha1.Workspace, opts Options) error {
	allowed := opts.ClusterRoleAllowList()
	var errs []error
	for _, ref := range BoundClusterRoles(ws) {
		if !slices.Contains(allowed, ref.Name) {
			errs = append(errs, &ClusterRoleNotAllowedError{
				Workspace:   ws.Name,
				Field:       ref.Field.String(),
				ClusterRole: ref.Name,
				Allowed:     slices.Clone(allowed),
			})
		}
	}
	return errors.Join(errs...)
}

// deploymentClusterRole returns the ClusterRole bound to the Workspace
// ServiceAccount, or "" when the spec binds none: the spec's clusterRole, or
// DefaultDeploymentClusterRole when neither rules nor bindRoles are set.
func deploymentClusterRole(ws *tenancyv1alpha1.Workspace) string {
	spec := ws.Spec.DeploymentRBAC
	switch {
	case spec == nil:
		return DefaultDeploymentClusterRole
	case spec.ClusterRole != "":
		return spec.ClusterRole
	case len(spec.Rules) == 0 && len(spec.BindRoles) == 0:
		return DefaultDeploymentClusterRole
	default:
		return ""
	}
}

// deploymentRBAC returns the Roles and RoleBindings that give the Workspace
// ServiceAccount its permissions in namespace:
//   - RoleBinding <ws>-deployment-clusterrole to the deployment ClusterRole,
//   - Role <ws>-deployment with spec.deploymentRBAC.rules and its
//     RoleBinding <ws>-deployment,
//   - RoleBinding <ws>-deployment-<kind>-<name> per bindRoles entry.
func deploymentRBAC(ws *tenancyv1alpha1.Workspace, namespace string) []client.Object {
	subjects := []rbacv1.Subject{{
		Kind:      rbacv1.ServiceAccountKind,
		Name:      ws.ServiceAccount(),
		Namespace: namespace,
	}}
	var objects []client.Object
	if role := deploymentClusterRole(ws); role != "" {
		name := boundedName(ws.Name, "deployment", "clusterrole")
		objects = append(objects, roleBinding(ws, namespace, name, "ClusterRole", role, subjects))
	}
	spec := ws.Spec.DeploymentRBAC
	if spec == nil {
		return objects
	}
	if len(spec.Rules) > 0 {
		name := boundedName(ws.Name, "deployment")
		objects = append(objects,
			role(ws, namespace, name, spec.Rules),
			roleBinding(ws, namespace, name, "Role", name, subjects))
	}
	seen := map[string]bool{}
	for _, ref := range spec.BindRoles {
		name := boundedName(ws.Name, "deployment", strings.ToLower(ref.Kind), ref.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		objects = append(objects, roleBinding(ws, namespace, name, ref.Kind, ref.Name, subjects))
	}
	return objects
}

// teamRBAC returns the Role and RoleBindings of the tenant's people in
// namespace: Role and RoleBinding <ws>-team for teamRBAC.rules, and
// RoleBinding <ws>-team-clusterrole for teamRBAC.clusterRole.
func teamRBAC(ws *tenancyv1alpha1.Workspace, namespace string) []client.Object {
	team := ws.Spec.TeamRBAC
	if team == nil {
		return nil
	}
	subjects := make([]rbacv1.Subject, 0, len(team.Groups)+len(team.Users))
	for _, group := range team.Groups {
		subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group})
	}
	for _, user := range team.Users {
		subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user})
	}
	if len(subjects) == 0 {
		return nil
	}

	var objects []client.Object
	if len(team.Rules) > 0 {
		name := boundedName(ws.Name, "team")
		objects = append(objects,
			role(ws, namespace, name, team.Rules),
			roleBinding(ws, namespace, name, "Role", name, subjects))
	}
	if team.ClusterRole != "" {
		name := boundedName(ws.Name, "team", "clusterrole")
		objects = append(objects, roleBinding(ws, namespace, name, "ClusterRole", team.ClusterRole, subjects))
	}
	return objects
}

func role(ws *tenancyv1alpha1.Workspace, namespace, name string, rules []rbacv1.PolicyRule) *rbacv1.Role {
	copied := make([]rbacv1.PolicyRule, len(rules))
	for i := range rules {
		rules[i].DeepCopyInto(&copied[i])
	}
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
		ObjectMeta: objectMeta(ws, namespace, name),
		Rules:      copied,
	}
}

func roleBinding(ws *tenancyv1alpha1.Workspace, namespace, name, roleKind, roleName string, subjects []rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: objectMeta(ws, namespace, name),
		Subjects:   slices.Clone(subjects),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: roleKind, Name: roleName},
	}
}

// boundedName joins parts with "-". A result longer than maxNameLength is
// cut and ends with a hash of the whole name, so that it stays unique.
func boundedName(parts ...string) string {
	name := strings.Join(parts, "-")
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	return name[:maxNameLength-len(suffix)] + suffix
}
