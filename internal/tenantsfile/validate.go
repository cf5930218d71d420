package tenantsfile

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// Limits of the Workspace schema that the tenants file maps to.
const (
	maxNamespaces          = 128
	maxLabels              = 64
	maxRepositories        = 256
	maxClusters            = 256
	maxRules               = 128
	maxBindRoles           = 64
	maxGroups              = 64
	maxURLLength           = 2048
	maxReferenceNameLength = 253
)

// Kinds of Flux sources that allowedRepositories may name.
var repositoryKinds = []string{"GitRepository", "OCIRepository", "HelmRepository", "Bucket"}

// validator checks a decoded File and records problems on the decoder, which
// stores the position of each field.
type validator struct {
	*decoder
	opts tenancy.Options
}

func (v *validator) errorf(path *field.Path, format string, args ...any) {
	v.addf(path, v.positionOf(path), format, args...)
}

func (v *validator) validate(f *File) {
	if f.ServiceAccount != nil {
		v.serviceAccount(f.ServiceAccount, field.NewPath("serviceAccount"))
	}
	tenants := field.NewPath("tenants")
	if len(f.Tenants) == 0 {
		v.errorf(tenants, "at least one tenant is required")
		return
	}
	tenantNames := map[string]int{}
	// namespaceOwners maps a namespace to the tenant and field that list it
	// first.
	namespaceOwners := map[string]namespaceOwner{}
	for i := range f.Tenants {
		tenant := &f.Tenants[i]
		p := tenants.Index(i)
		v.tenantName(tenant.Name, p.Child("name"), i, tenantNames)
		v.namespaces(tenant, p.Child("namespaces"), namespaceOwners)
		v.labels(tenant.Labels, p.Child("labels"))
		v.repositories(tenant.AllowedRepositories, p.Child("allowedRepositories"))
		v.clusters(tenant.AllowedClusters, p.Child("allowedClusters"))
		if tenant.TeamRBAC != nil {
			v.teamRBAC(tenant.TeamRBAC, p.Child("teamRBAC"))
		}
		if tenant.DeploymentRBAC != nil {
			v.deploymentRBAC(tenant.DeploymentRBAC, p.Child("deploymentRBAC"))
		}
	}
	v.clusterRoles(f, tenants)
}

func (v *validator) serviceAccount(sa *ServiceAccount, p *field.Path) {
	name := p.Child("name")
	switch {
	case sa.Name == "":
		v.errorf(name, "a ServiceAccount name is required when serviceAccount is set")
	default:
		if problems := validation.IsDNS1123Subdomain(sa.Name); len(problems) > 0 {
			v.errorf(name, "%q is not a valid ServiceAccount name: %s", sa.Name, strings.Join(problems, "; "))
		}
	}
}

func (v *validator) tenantName(name string, p *field.Path, index int, seen map[string]int) {
	if name == "" {
		v.errorf(p, "a tenant name is required")
		return
	}
	if problems := validation.IsDNS1123Label(name); len(problems) > 0 {
		v.errorf(p, "%q is not a valid tenant name: %s; the name becomes the Workspace name and a label value",
			name, strings.Join(problems, "; "))
	}
	if first, ok := seen[name]; ok {
		v.errorf(p, "duplicate tenant name %q: tenants[%d] has the same name", name, first)
		return
	}
	seen[name] = index
}

// namespaceOwner is the tenant that lists a namespace first.
type namespaceOwner struct {
	tenant string
	field  string
}

func (v *validator) namespaces(tenant *Tenant, p *field.Path, owners map[string]namespaceOwner) {
	if len(tenant.Namespaces) == 0 {
		v.errorf(p, "at least one namespace is required")
		return
	}
	if len(tenant.Namespaces) > maxNamespaces {
		v.errorf(p, "%d namespaces listed, at most %d are allowed", len(tenant.Namespaces), maxNamespaces)
	}
	inTenant := map[string]int{}
	for i, namespace := range tenant.Namespaces {
		item := p.Index(i)
		if namespace == "" {
			v.errorf(item, "a namespace name must not be empty")
			continue
		}
		if problems := validation.IsDNS1123Label(namespace); len(problems) > 0 {
			v.errorf(item, "%q is not a valid namespace name: %s", namespace, strings.Join(problems, "; "))
			continue
		}
		if first, ok := inTenant[namespace]; ok {
			v.errorf(item, "namespace %q is listed twice: also at %s", namespace, p.Index(first))
			continue
		}
		inTenant[namespace] = i
		if owner, ok := owners[namespace]; ok {
			v.errorf(item, "namespace %q is already claimed by tenant %q at %s; a namespace belongs to one tenant",
				namespace, owner.tenant, owner.field)
			continue
		}
		owners[namespace] = namespaceOwner{tenant: tenant.Name, field: item.String()}
	}
}

func (v *validator) labels(labels map[string]string, p *field.Path) {
	if len(labels) > maxLabels {
		v.errorf(p, "%d labels set, at most %d are allowed", len(labels), maxLabels)
	}
	for _, key := range sortedKeys(labels) {
		item := p.Key(key)
		if problems := validation.IsQualifiedName(key); len(problems) > 0 {
			v.errorf(item, "%q is not a valid label key: %s", key, strings.Join(problems, "; "))
		}
		if problems := validation.IsValidLabelValue(labels[key]); len(problems) > 0 {
			v.errorf(item, "%q is not a valid label value: %s", labels[key], strings.Join(problems, "; "))
		}
	}
}

func (v *validator) repositories(repositories []AllowedRepository, p *field.Path) {
	if len(repositories) > maxRepositories {
		v.errorf(p, "%d repositories listed, at most %d are allowed", len(repositories), maxRepositories)
	}
	for i, repository := range repositories {
		item := p.Index(i)
		switch {
		case repository.Kind == "":
			v.errorf(item.Child("kind"), "a kind is required: one of %s", strings.Join(repositoryKinds, ", "))
		case !contains(repositoryKinds, repository.Kind):
			v.errorf(item.Child("kind"), "unsupported kind %q: use one of %s", repository.Kind, strings.Join(repositoryKinds, ", "))
		}
		switch {
		case repository.URL == "":
			v.errorf(item.Child("url"), "a URL is required")
		case len(repository.URL) > maxURLLength:
			v.errorf(item.Child("url"), "the URL has %d characters, at most %d are allowed", len(repository.URL), maxURLLength)
		}
	}
}

func (v *validator) clusters(clusters []AllowedCluster, p *field.Path) {
	if len(clusters) > maxClusters {
		v.errorf(p, "%d clusters listed, at most %d are allowed", len(clusters), maxClusters)
	}
	for i, cluster := range clusters {
		item := p.Index(i).Child("kubeConfig")
		if cluster.KubeConfig == "" {
			v.errorf(item, "the name of a kubeconfig Secret is required")
			continue
		}
		if problems := validation.IsDNS1123Subdomain(cluster.KubeConfig); len(problems) > 0 {
			v.errorf(item, "%q is not a valid Secret name: %s", cluster.KubeConfig, strings.Join(problems, "; "))
		}
	}
}

func (v *validator) teamRBAC(team *TeamRBAC, p *field.Path) {
	groups := p.Child("groupNames")
	switch {
	case len(team.GroupNames) == 0:
		v.errorf(groups, "at least one group is required: teamRBAC binds its rules to these groups")
	case len(team.GroupNames) > maxGroups:
		v.errorf(groups, "%d groups listed, at most %d are allowed", len(team.GroupNames), maxGroups)
	}
	seen := map[string]int{}
	for i, group := range team.GroupNames {
		item := groups.Index(i)
		switch {
		case group == "":
			v.errorf(item, "a group name must not be empty")
		case len(group) > maxReferenceNameLength:
			v.errorf(item, "the group name has %d characters, at most %d are allowed", len(group), maxReferenceNameLength)
		}
		if first, ok := seen[group]; ok {
			v.errorf(item, "group %q is listed twice: also at %s", group, groups.Index(first))
		}
		seen[group] = i
	}
	if len(team.Rules) == 0 {
		v.errorf(p.Child("rules"), "at least one rule is required: teamRBAC creates a Role with these rules")
	}
	v.rules(team.Rules, p.Child("rules"))
}

func (v *validator) deploymentRBAC(deployment *DeploymentRBAC, p *field.Path) {
	bindRoles := p.Child("bindRoles")
	if len(deployment.BindRoles) > maxBindRoles {
		v.errorf(bindRoles, "%d roles listed, at most %d are allowed", len(deployment.BindRoles), maxBindRoles)
	}
	seen := map[RoleReference]int{}
	for i, ref := range deployment.BindRoles {
		item := bindRoles.Index(i)
		switch ref.Kind {
		case "":
			v.errorf(item.Child("kind"), "a kind is required: Role or ClusterRole")
		case "Role", "ClusterRole":
		default:
			v.errorf(item.Child("kind"), "unsupported kind %q: use Role or ClusterRole", ref.Kind)
		}
		name := item.Child("name")
		switch {
		case ref.Name == "":
			v.errorf(name, "a role name is required")
		case len(ref.Name) > maxReferenceNameLength:
			v.errorf(name, "the role name has %d characters, at most %d are allowed", len(ref.Name), maxReferenceNameLength)
		default:
			if problems := path.ValidatePathSegmentName(ref.Name, false); len(problems) > 0 {
				v.errorf(name, "%q is not a valid role name: %s", ref.Name, strings.Join(problems, "; "))
			}
		}
		if first, ok := seen[ref]; ok {
			v.errorf(item, "duplicate binding: %s already binds %s %q, and both would create the same RoleBinding",
				bindRoles.Index(first), ref.Kind, ref.Name)
			continue
		}
		seen[ref] = i
	}
	v.rules(deployment.Rules, p.Child("rules"))
}

// rules checks policy rules as the API server checks those of a Role.
func (v *validator) rules(rules []rbacv1.PolicyRule, p *field.Path) {
	if len(rules) > maxRules {
		v.errorf(p, "%d rules listed, at most %d are allowed", len(rules), maxRules)
	}
	for i, rule := range rules {
		item := p.Index(i)
		if len(rule.Verbs) == 0 {
			v.errorf(item.Child("verbs"), "at least one verb is required")
		}
		if len(rule.NonResourceURLs) > 0 {
			v.errorf(item.Child("nonResourceURLs"),
				"nonResourceURLs are not allowed: the rules go into a Role, which is namespaced")
			continue
		}
		if len(rule.APIGroups) == 0 {
			v.errorf(item.Child("apiGroups"), `at least one API group is required; use "" for the core group`)
		}
		if len(rule.Resources) == 0 {
			v.errorf(item.Child("resources"), "at least one resource is required")
		}
	}
}

// clusterRoles checks that every ClusterRole a tenant binds, including the
// admin ClusterRole bound when deploymentRBAC is unset, is in the
// allow-list of the operator.
func (v *validator) clusterRoles(f *File, tenants *field.Path) {
	allowed := v.opts.ClusterRoleAllowList()
	for i, ws := range f.Workspaces() {
		for _, ref := range tenancy.BoundClusterRoles(&ws) {
			if contains(allowed, ref.Name) {
				continue
			}
			p, defaulted := tenantField(tenants.Index(i), ref.Field, f.Tenants[i])
			if defaulted {
				v.errorf(p, "without deploymentRBAC rules or bindRoles the operator binds ClusterRole %q, which is not allowed; "+
					"allowed ClusterRoles are %s", ref.Name, strings.Join(allowed, ", "))
				continue
			}
			v.errorf(p, "ClusterRole %q is not allowed: use one of %s", ref.Name, strings.Join(allowed, ", "))
		}
	}
}

// tenantField maps a Workspace field (spec.deploymentRBAC.bindRoles[0].name)
// to the tenants file field. It reports whether the field is the default
// deployment ClusterRole, which no key of the file sets.
func tenantField(tenant *field.Path, workspaceField *field.Path, t Tenant) (*field.Path, bool) {
	name := strings.TrimPrefix(workspaceField.String(), "spec.")
	if name == "deploymentRBAC.clusterRole" {
		if t.DeploymentRBAC == nil {
			return tenant, true
		}
		return tenant.Child("deploymentRBAC"), true
	}
	p := tenant
	for part := range strings.SplitSeq(name, ".") {
		base, index, hasIndex := strings.Cut(part, "[")
		p = p.Child(base)
		if hasIndex {
			var i int
			if _, err := fmt.Sscanf(index, "%d]", &i); err == nil {
				p = p.Index(i)
			}
		}
	}
	return p, false
}
