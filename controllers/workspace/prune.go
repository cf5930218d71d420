package workspace

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// prune is the prune phase: it deletes the objects of the Workspace that
// the desired set no longer contains, and releases the namespaces that the
// spec no longer lists. Objects in namespaces that this pass left alone
// (conflict, terminating) are kept.
func (r *WorkspaceReconciler) prune(ctx context.Context, s *workspaceScope, desired []client.Object) error {
	keep := map[string]bool{}
	for _, obj := range desired {
		keep[describeObject(obj)] = true
	}
	if err := r.deleteOwnedObjects(ctx, s, keep); err != nil {
		return err
	}

	owned, err := r.ownedNamespaces(ctx, s.ws)
	if err != nil {
		return err
	}
	for i := range owned {
		namespace := &owned[i]
		if slices.Contains(s.ws.Spec.Namespaces, namespace.Name) {
			continue
		}
		if err := r.releaseNamespace(ctx, s, namespace); err != nil {
			s.namespaces.failures = append(s.namespaces.failures, err.Error())
			s.retry = append(s.retry, err)
		}
	}
	return nil
}

// deleteOwnedObjects deletes the namespaced objects and Policies that carry
// the managed-by and workspace labels of s.ws and that it controls, except
// those in keep (by describeObject) and those in namespaces of
// s.untouchable. keep nil deletes them all. A failure to delete counts
// against the condition of the object's kind; a failure to list is
// returned.
func (r *WorkspaceReconciler) deleteOwnedObjects(ctx context.Context, s *workspaceScope, keep map[string]bool) error {
	selector := client.MatchingLabels{
		tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue,
		tenancyv1alpha1.WorkspaceLabel: s.ws.Name,
	}
	var deleted []string
	for _, kind := range generatedKinds {
		list := kind.newList()
		if err := r.List(ctx, list, selector); err != nil {
			return fmt.Errorf("list %s objects of workspace %s: %w", kind.kind, s.ws.Name, err)
		}
		objects, err := meta.ExtractList(list)
		if err != nil {
			return fmt.Errorf("read %s list of workspace %s: %w", kind.kind, s.ws.Name, err)
		}
		for _, item := range objects {
			obj, ok := item.(client.Object)
			if !ok || s.untouchable[obj.GetNamespace()] {
				continue
			}
			name, err := r.deleteIfStale(ctx, s, obj, keep)
			if err != nil {
				s.addFailure(kind.condition, err)
				continue
			}
			if name != "" {
				deleted = append(deleted, name)
			}
		}
	}

	policies := &pacv2beta3.PolicyList{}
	if err := r.List(ctx, policies, selector); err != nil {
		return fmt.Errorf("list Policies of workspace %s: %w", s.ws.Name, err)
	}
	for i := range policies.Items {
		name, err := r.deleteIfStale(ctx, s, &policies.Items[i], keep)
		if err != nil {
			s.addFailure(tenancyv1alpha1.PoliciesReadyCondition, err)
			continue
		}
		if name != "" {
			deleted = append(deleted, name)
		}
	}

	if len(deleted) > 0 {
		ctrl.LoggerFrom(ctx).Info("deleted objects", "objects", deleted)
		r.event(s.ws, eventTypeNormal, reasonObjectsDeleted, "Delete", "deleted %s", listNames(deleted))
	}
	return nil
}

// deleteIfStale deletes obj unless keep contains it or s.ws does not
// control it, and returns its description when it deleted it.
func (r *WorkspaceReconciler) deleteIfStale(ctx context.Context, s *workspaceScope, obj client.Object, keep map[string]bool) (string, error) {
	name := describeObject(obj)
	if keep[name] || !metav1.IsControlledBy(obj, s.ws) || !obj.GetDeletionTimestamp().IsZero() {
		return "", nil
	}
	uid := obj.GetUID()
	if err := r.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("delete %s: %w", name, err)
	}
	return name, nil
}

// generatedKinds are the namespaced kinds that Generate returns besides
// Namespace and Policy, with the condition whose failures they count as.
var generatedKinds = []struct {
	newList   func() client.ObjectList
	kind      string
	condition string
}{
	{func() client.ObjectList { return &corev1.ServiceAccountList{} }, "ServiceAccount", tenancyv1alpha1.RBACReadyCondition},
	{func() client.ObjectList { return &rbacv1.RoleBindingList{} }, "RoleBinding", tenancyv1alpha1.RBACReadyCondition},
	{func() client.ObjectList { return &rbacv1.RoleList{} }, "Role", tenancyv1alpha1.RBACReadyCondition},
	{func() client.ObjectList { return &corev1.ResourceQuotaList{} }, "ResourceQuota", tenancyv1alpha1.NamespacesReadyCondition},
	{func() client.ObjectList { return &corev1.LimitRangeList{} }, "LimitRange", tenancyv1alpha1.NamespacesReadyCondition},
}
