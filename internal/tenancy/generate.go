// Package tenancy turns a Workspace spec into the objects that make up the
// tenant: namespaces, the ServiceAccount that Flux impersonates, RBAC,
// quotas and the tenancy policies. It makes no API calls, so the Workspace
// controller and the CLI (which prints the objects for Git) produce the same
// list.
package tenancy

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// DefaultAllowedClusterRoles are the ClusterRoles that a Workspace may bind
// when Options.AllowedClusterRoles is empty.
var DefaultAllowedClusterRoles = []string{"admin", "edit", "view"}

// DefaultDeploymentClusterRole is bound to the Workspace ServiceAccount when
// spec.deploymentRBAC sets no clusterRole, rules or bindRoles.
const DefaultDeploymentClusterRole = "admin"

// Options adjusts Generate.
type Options struct {
	// AllowedClusterRoles are the ClusterRoles that a Workspace may bind in
	// deploymentRBAC.clusterRole, deploymentRBAC.bindRoles and
	// teamRBAC.clusterRole. Empty means DefaultAllowedClusterRoles.
	AllowedClusterRoles []string
}

// ClusterRoleAllowList returns AllowedClusterRoles, or
// DefaultAllowedClusterRoles when it is empty.
func (o Options) ClusterRoleAllowList() []string {
	if len(o.AllowedClusterRoles) == 0 {
		return DefaultAllowedClusterRoles
	}
	return o.AllowedClusterRoles
}

// Generate returns the objects that the Workspace ws consists of, sorted by
// kind (Namespace, ServiceAccount, Role, RoleBinding, ResourceQuota,
// LimitRange, Policy), then namespace, then name. Per namespace it returns
// the Namespace, the ServiceAccount, the deployment and team RBAC, and the
// ResourceQuota and LimitRange when the spec sets them. Per Workspace it
// returns the tenancy Policies.
//
// Every object carries the Workspace's spec.labels, ManagedByLabel and
// WorkspaceLabel, and Namespaces also carry TenantLabel. The operator's
// labels win over spec.labels with the same key. Generate sets no owner
// references.
//
// A Workspace that lists no namespaces gets no objects at all, because a
// policy with an empty targets.namespaces would check every namespace.
//
// Generate returns an error that wraps one *ClusterRoleNotAllowedError per
// ClusterRole outside opts.AllowedClusterRoles, and no objects.
func Generate(ws *tenancyv1alpha1.Workspace, opts Options) ([]client.Object, error) {
	if err := CheckClusterRoles(ws, opts); err != nil {
		return nil, err
	}
	namespaces := workspaceNamespaces(ws)
	if len(namespaces) == 0 {
		return nil, nil
	}

	var objects []client.Object
	for _, namespace := range namespaces {
		objects = append(objects, namespaceObject(ws, namespace))
		objects = append(objects, serviceAccount(ws, namespace))
		objects = append(objects, deploymentRBAC(ws, namespace)...)
		objects = append(objects, teamRBAC(ws, namespace)...)
		objects = append(objects, quotas(ws, namespace)...)
	}
	objects = append(objects, policies(ws, namespaces)...)
	sortObjects(objects)
	return objects, nil
}

// workspaceNamespaces returns spec.namespaces sorted and without duplicates.
func workspaceNamespaces(ws *tenancyv1alpha1.Workspace) []string {
	namespaces := slices.Clone(ws.Spec.Namespaces)
	slices.Sort(namespaces)
	return slices.Compact(namespaces)
}

// Labels returns the labels that every object of ws carries: spec.labels,
// then ManagedByLabel and WorkspaceLabel.
func Labels(ws *tenancyv1alpha1.Workspace) map[string]string {
	labels := make(map[string]string, len(ws.Spec.Labels)+2)
	for key, value := range ws.Spec.Labels {
		labels[key] = string(value)
	}
	labels[tenancyv1alpha1.ManagedByLabel] = tenancyv1alpha1.ManagedByValue
	labels[tenancyv1alpha1.WorkspaceLabel] = ws.Name
	return labels
}

// objectMeta returns the metadata of an object of ws.
func objectMeta(ws *tenancyv1alpha1.Workspace, namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: Labels(ws)}
}

func namespaceObject(ws *tenancyv1alpha1.Workspace, name string) *corev1.Namespace {
	namespace := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: objectMeta(ws, "", name),
	}
	namespace.Labels[tenancyv1alpha1.TenantLabel] = ws.Name
	return namespace
}

func serviceAccount(ws *tenancyv1alpha1.Workspace, namespace string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(ws, namespace, ws.ServiceAccount()),
	}
}

// quotas returns the ResourceQuota and LimitRange of a namespace, for the
// ones the spec sets.
func quotas(ws *tenancyv1alpha1.Workspace, namespace string) []client.Object {
	var objects []client.Object
	if ws.Spec.ResourceQuota != nil {
		objects = append(objects, &corev1.ResourceQuota{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
			ObjectMeta: objectMeta(ws, namespace, ws.Name),
			Spec:       *ws.Spec.ResourceQuota.DeepCopy(),
		})
	}
	if ws.Spec.LimitRange != nil {
		objects = append(objects, &corev1.LimitRange{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
			ObjectMeta: objectMeta(ws, namespace, ws.Name),
			Spec:       *ws.Spec.LimitRange.DeepCopy(),
		})
	}
	return objects
}

// kindOrder is the position of each generated kind in Generate's output:
// a namespace before what lives in it, a Role before its RoleBinding.
var kindOrder = map[string]int{
	"Namespace":      0,
	"ServiceAccount": 1,
	"Role":           2,
	"RoleBinding":    3,
	"ResourceQuota":  4,
	"LimitRange":     5,
	"Policy":         6,
}

func sortObjects(objects []client.Object) {
	slices.SortStableFunc(objects, func(a, b client.Object) int {
		return cmp.Or(
			cmp.Compare(kindOrder[kindOf(a)], kindOrder[kindOf(b)]),
			cmp.Compare(a.GetNamespace(), b.GetNamespace()),
			cmp.Compare(a.GetName(), b.GetName()),
		)
	})
}

func kindOf(obj client.Object) string {
	return obj.GetObjectKind().GroupVersionKind().Kind
}
