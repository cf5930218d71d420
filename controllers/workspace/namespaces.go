package workspace

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// namespaceClaim is what a Workspace may do with one of its namespaces.
type namespaceClaim struct {
	// state is NamespaceStateReady when the Workspace claims the namespace
	// and may create or label it, or NamespaceStateConflict or
	// NamespaceStateTerminating when it must leave it alone.
	state   string
	message string
}

// tenantLabelOwner describes the Workspace named by an existing namespace's
// tenant label.
type tenantLabelOwner struct {
	name     string
	exists   bool
	deleting bool
}

// claimNamespace decides whether ws may claim the namespace name. existing
// is the namespace, or nil when it does not exist. otherListers are the
// other Workspaces, not being deleted, that list it. owner is the Workspace
// that the tenant label names.
//
// A namespace labelled for another existing Workspace belongs to that one,
// and a namespace labelled for ws belongs to ws. Any other namespace is
// created or adopted only when no other Workspace lists it. A tenant label
// that names a Workspace that no longer exists does not count.
func claimNamespace(ws *tenancyv1alpha1.Workspace, name string, existing *corev1.Namespace,
	otherListers []string, owner tenantLabelOwner,
) namespaceClaim {
	if existing != nil {
		tenant := existing.Labels[tenancyv1alpha1.TenantLabel]
		if tenant != "" && tenant != ws.Name && owner.exists {
			message := fmt.Sprintf("namespace %s belongs to Workspace %s (label %s=%s); remove it from the spec of one of the two",
				name, tenant, tenancyv1alpha1.TenantLabel, tenant)
			if owner.deleting {
				message = fmt.Sprintf("namespace %s belongs to Workspace %s, which is being deleted; it is adopted once that Workspace released it",
					name, tenant)
			}
			return namespaceClaim{state: tenancyv1alpha1.NamespaceStateConflict, message: message}
		}
		if !existing.DeletionTimestamp.IsZero() {
			return namespaceClaim{
				state:   tenancyv1alpha1.NamespaceStateTerminating,
				message: fmt.Sprintf("namespace %s is being deleted; it is created again once it is gone", name),
			}
		}
		if tenant == ws.Name {
			return namespaceClaim{state: tenancyv1alpha1.NamespaceStateReady}
		}
	}
	if len(otherListers) > 0 {
		return namespaceClaim{
			state: tenancyv1alpha1.NamespaceStateConflict,
			message: fmt.Sprintf("namespace %s is also listed by Workspace %s; remove it from the spec of all but one",
				name, strings.Join(otherListers, ", ")),
		}
	}
	return namespaceClaim{state: tenancyv1alpha1.NamespaceStateReady}
}

// reconcileNamespaces is the namespaces phase: it creates or labels each
// namespace that the Workspace claims and records the state of every
// namespace in the spec. It leaves conflicting and terminating namespaces
// alone, and the later phases work in s.claimed only.
func (r *WorkspaceReconciler) reconcileNamespaces(ctx context.Context, s *workspaceScope) error {
	objects, err := tenancy.Generate(s.ws, tenancy.Options{AllowedClusterRoles: r.AllowedClusterRoles})
	if err != nil {
		return fmt.Errorf("generate the namespaces of workspace %s: %w", s.ws.Name, err)
	}
	result := &namespacesResult{}
	s.namespaces = result
	for _, obj := range objects {
		desired, ok := obj.(*corev1.Namespace)
		if !ok {
			continue
		}
		status, err := r.reconcileNamespace(ctx, s, desired)
		if err != nil {
			return err
		}
		result.statuses = append(result.statuses, status)
		switch status.State {
		case tenancyv1alpha1.NamespaceStateReady:
			s.claimed = append(s.claimed, desired.Name)
		case tenancyv1alpha1.NamespaceStateTerminating:
			s.untouchable[desired.Name] = true
			s.retry = append(s.retry, fmt.Errorf("workspace %s: %s", s.ws.Name, status.Message))
		default:
			s.untouchable[desired.Name] = true
		}
	}
	return nil
}

// reconcileNamespace claims and applies one namespace and returns its
// status. It returns an error only when it cannot read the cluster.
func (r *WorkspaceReconciler) reconcileNamespace(ctx context.Context, s *workspaceScope, desired *corev1.Namespace) (tenancyv1alpha1.NamespaceStatus, error) {
	name := desired.Name
	status := tenancyv1alpha1.NamespaceStatus{Name: name}

	existing := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, existing); err != nil {
		if !apierrors.IsNotFound(err) {
			return status, fmt.Errorf("get namespace %s: %w", name, err)
		}
		existing = nil
	}
	otherListers, err := r.otherListers(ctx, s.ws, name)
	if err != nil {
		return status, err
	}
	owner, err := r.tenantLabelOwner(ctx, existing)
	if err != nil {
		return status, err
	}

	claim := claimNamespace(s.ws, name, existing, otherListers, owner)
	status.State, status.Message = claim.state, claim.message
	if claim.state != tenancyv1alpha1.NamespaceStateReady {
		return status, nil
	}

	u, err := tenancy.ToUnstructured(desired)
	if err != nil {
		return status, err
	}
	// Without ForceOwnership: a label that another field manager set to a
	// different value makes the apply fail, and the namespace stays as it is.
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(kube.FieldManager)); err != nil {
		status.State = tenancyv1alpha1.NamespaceStatePending
		status.Message = fmt.Sprintf("apply namespace %s: %v", name, err)
		s.retry = append(s.retry, fmt.Errorf("workspace %s: %s", s.ws.Name, status.Message))
		return status, nil
	}
	// The namespace is the Event's related object: Events that share their
	// regarding and related objects, reason and action are merged into one
	// series that keeps the first note, so without it the Event of a second
	// namespace would only count on the first one's.
	switch {
	case existing == nil:
		r.eventAbout(s.ws, desired, eventTypeNormal, reasonNamespaceCreated, "Create", "created namespace %s", name)
	case existing.Labels[tenancyv1alpha1.TenantLabel] != s.ws.Name:
		r.eventAbout(s.ws, desired, eventTypeNormal, reasonNamespaceAdopted, "Adopt", "adopted existing namespace %s", name)
	}
	return status, nil
}

// otherListers returns the names of the other Workspaces, not being
// deleted, that list namespace.
func (r *WorkspaceReconciler) otherListers(ctx context.Context, ws *tenancyv1alpha1.Workspace, namespace string) ([]string, error) {
	list := &tenancyv1alpha1.WorkspaceList{}
	if err := r.List(ctx, list, client.MatchingFields{namespacesIndex: namespace}); err != nil {
		return nil, fmt.Errorf("list Workspaces that list namespace %s: %w", namespace, err)
	}
	var names []string
	for i := range list.Items {
		other := &list.Items[i]
		if other.Name != ws.Name && other.DeletionTimestamp.IsZero() {
			names = append(names, other.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// tenantLabelOwner looks up the Workspace that the namespace's tenant label
// names.
func (r *WorkspaceReconciler) tenantLabelOwner(ctx context.Context, namespace *corev1.Namespace) (tenantLabelOwner, error) {
	if namespace == nil || namespace.Labels[tenancyv1alpha1.TenantLabel] == "" {
		return tenantLabelOwner{}, nil
	}
	owner := tenantLabelOwner{name: namespace.Labels[tenancyv1alpha1.TenantLabel]}
	ws := &tenancyv1alpha1.Workspace{}
	if err := r.Get(ctx, client.ObjectKey{Name: owner.name}, ws); err != nil {
		if apierrors.IsNotFound(err) {
			return owner, nil
		}
		return owner, fmt.Errorf("get Workspace %s named by the tenant label of namespace %s: %w", owner.name, namespace.Name, err)
	}
	owner.exists = true
	owner.deleting = !ws.DeletionTimestamp.IsZero()
	return owner, nil
}

// ownedNamespaces returns the namespaces that carry the tenant and
// workspace labels of ws: the ones it created or adopted.
func (r *WorkspaceReconciler) ownedNamespaces(ctx context.Context, ws *tenancyv1alpha1.Workspace) ([]corev1.Namespace, error) {
	list := &corev1.NamespaceList{}
	err := r.List(ctx, list, client.MatchingLabels{
		tenancyv1alpha1.TenantLabel:    ws.Name,
		tenancyv1alpha1.WorkspaceLabel: ws.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("list namespaces of workspace %s: %w", ws.Name, err)
	}
	return list.Items, nil
}

// releaseNamespace lets go of a namespace that ws created or adopted: with
// deletionPolicy Delete it deletes it, otherwise it removes the labels that
// the operator set, which leaves the namespace and its content in place.
func (r *WorkspaceReconciler) releaseNamespace(ctx context.Context, s *workspaceScope, namespace *corev1.Namespace) error {
	if !namespace.DeletionTimestamp.IsZero() {
		return nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("namespace", namespace.Name)
	if deletionPolicy(s.ws) == tenancyv1alpha1.DeletionPolicyDelete {
		err := r.Delete(ctx, namespace, client.Preconditions{UID: &namespace.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s of workspace %s: %w", namespace.Name, s.ws.Name, err)
		}
		log.Info("deleted namespace", "deletionPolicy", tenancyv1alpha1.DeletionPolicyDelete)
		r.event(s.ws, eventTypeNormal, reasonNamespaceDeleted, "Delete",
			"deleted namespace %s (deletionPolicy Delete)", namespace.Name)
		return nil
	}

	// Applying the namespace without labels removes every label that only
	// the operator's field manager set, the tenant label among them. The
	// resourceVersion makes the apply fail instead of creating the namespace
	// again when it was deleted since the list.
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(namespace.Name)
	u.SetResourceVersion(namespace.ResourceVersion)
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(kube.FieldManager)); err != nil {
		return fmt.Errorf("remove the labels of namespace %s of workspace %s: %w", namespace.Name, s.ws.Name, err)
	}
	log.Info("released namespace", "deletionPolicy", tenancyv1alpha1.DeletionPolicyOrphan)
	r.event(s.ws, eventTypeNormal, reasonNamespaceReleased, "Release",
		"released namespace %s: removed the tenant label and kept the namespace (deletionPolicy Orphan)", namespace.Name)
	return nil
}
