package tenantsfile

import (
	"slices"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// Workspaces returns one Workspace per tenant, in file order. Each sets only
// the fields that the file sets, so that the API server fills in the
// schema defaults: teamRBAC.groupNames become spec.teamRBAC.groups, the
// top-level serviceAccount becomes spec.serviceAccountName of every tenant,
// and the other keys keep their names.
func (f *File) Workspaces() []tenancyv1alpha1.Workspace {
	workspaces := make([]tenancyv1alpha1.Workspace, len(f.Tenants))
	for i := range f.Tenants {
		workspaces[i] = f.workspace(&f.Tenants[i])
	}
	return workspaces
}

func (f *File) workspace(t *Tenant) tenancyv1alpha1.Workspace {
	ws := tenancyv1alpha1.Workspace{
		TypeMeta: metav1.TypeMeta{
			APIVersion: tenancyv1alpha1.GroupVersion.String(),
			Kind:       "Workspace",
		},
		ObjectMeta: metav1.ObjectMeta{Name: t.Name},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			Namespaces: slices.Clone(t.Namespaces),
		},
	}
	if f.ServiceAccount != nil {
		ws.Spec.ServiceAccountName = f.ServiceAccount.Name
	}
	if len(t.Labels) > 0 {
		ws.Spec.Labels = make(map[string]tenancyv1alpha1.LabelValue, len(t.Labels))
		for key, value := range t.Labels {
			ws.Spec.Labels[key] = tenancyv1alpha1.LabelValue(value)
		}
	}
	for _, repository := range t.AllowedRepositories {
		ws.Spec.AllowedRepositories = append(ws.Spec.AllowedRepositories,
			tenancyv1alpha1.AllowedRepository{Kind: repository.Kind, URL: repository.URL})
	}
	for _, cluster := range t.AllowedClusters {
		ws.Spec.AllowedClusters = append(ws.Spec.AllowedClusters,
			tenancyv1alpha1.AllowedCluster{KubeConfig: cluster.KubeConfig})
	}
	if t.TeamRBAC != nil {
		ws.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{
			Groups: slices.Clone(t.TeamRBAC.GroupNames),
			Rules:  copyRules(t.TeamRBAC.Rules),
		}
	}
	if t.DeploymentRBAC != nil {
		deployment := &tenancyv1alpha1.DeploymentRBAC{Rules: copyRules(t.DeploymentRBAC.Rules)}
		for _, ref := range t.DeploymentRBAC.BindRoles {
			deployment.BindRoles = append(deployment.BindRoles,
				tenancyv1alpha1.RoleReference{Kind: ref.Kind, Name: ref.Name})
		}
		ws.Spec.DeploymentRBAC = deployment
	}
	return ws
}

func copyRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	if rules == nil {
		return nil
	}
	copied := make([]rbacv1.PolicyRule, len(rules))
	for i := range rules {
		rules[i].DeepCopyInto(&copied[i])
	}
	return copied
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, value string) bool {
	return slices.Contains(list, value)
}
