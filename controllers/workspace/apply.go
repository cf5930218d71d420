package workspace

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// Event types and the reasons of Normal events. Warning events use the
// reason of the condition they report.
const (
	eventTypeNormal  = corev1.EventTypeNormal
	eventTypeWarning = corev1.EventTypeWarning

	reasonNamespaceCreated  = "NamespaceCreated"
	reasonNamespaceAdopted  = "NamespaceAdopted"
	reasonNamespaceReleased = "NamespaceReleased"
	reasonNamespaceDeleted  = "NamespaceDeleted"
	reasonObjectsApplied    = "ObjectsApplied"
	reasonObjectsDeleted    = "ObjectsDeleted"
	reasonServiceAccountSet = "ServiceAccountSet"
	reasonFluxObjectDeleted = "FluxObjectDeleted"
)

// maxListedInMessage bounds how many object names a condition message or
// Event lists; the rest are counted.
const maxListedInMessage = 5

// reconcileRBAC is the rbac phase: it applies the ServiceAccounts, Roles
// and RoleBindings, and reports the bound ClusterRoles that do not exist.
// A RoleBinding to a missing ClusterRole is still applied; it grants nothing
// until the ClusterRole exists, and the reconcile retries with backoff.
func (r *WorkspaceReconciler) reconcileRBAC(ctx context.Context, s *workspaceScope, desired []client.Object) {
	result := &rbacResult{serviceAccount: s.ws.ServiceAccount(), namespaces: len(s.claimed)}
	s.rbac = result
	if len(s.claimed) > 0 {
		for _, ref := range tenancy.BoundClusterRoles(s.ws) {
			if slices.Contains(result.missingClusterRoles, ref.Name) {
				continue
			}
			exists, err := r.clusterRoleExists(ctx, ref.Name)
			if err != nil {
				result.failures = append(result.failures, err.Error())
				continue
			}
			if !exists {
				result.missingClusterRoles = append(result.missingClusterRoles, ref.Name)
			}
		}
	}
	if len(result.missingClusterRoles) > 0 {
		s.retry = append(s.retry, fmt.Errorf("workspace %s: ClusterRole %s not found",
			s.ws.Name, strings.Join(result.missingClusterRoles, ", ")))
	}

	applied := r.applyAll(ctx, s, selectKinds(desired, "ServiceAccount", "Role", "RoleBinding"), &result.failures)
	result.bindings = countKind(applied, "RoleBinding")
}

// reconcileQuotas is the quotas phase: it applies the ResourceQuotas and
// LimitRanges. Failures count against NamespacesReady.
func (r *WorkspaceReconciler) reconcileQuotas(ctx context.Context, s *workspaceScope, desired []client.Object) {
	r.applyAll(ctx, s, selectKinds(desired, "ResourceQuota", "LimitRange"), &s.namespaces.failures)
}

// reconcilePolicies is the policies phase: it applies the tenancy policies.
func (r *WorkspaceReconciler) reconcilePolicies(ctx context.Context, s *workspaceScope, desired []client.Object) {
	result := &policiesResult{}
	s.policies = result
	applied := r.applyAll(ctx, s, selectKinds(desired, "Policy"), &result.failures)
	for _, obj := range applied {
		result.ids = append(result.ids, obj.GetName())
	}
}

// applyAll applies objects owned by the Workspace, appends a message per
// failure to failures, and returns the objects that were applied. It emits
// one Normal Event that lists the objects it created or changed back.
func (r *WorkspaceReconciler) applyAll(ctx context.Context, s *workspaceScope, objects []client.Object, failures *[]string) []client.Object {
	var applied []client.Object
	var created, restored []string
	for _, obj := range objects {
		change, err := r.applyOwned(ctx, s.ws, obj)
		if err != nil {
			*failures = append(*failures, err.Error())
			s.retry = append(s.retry, err)
			continue
		}
		applied = append(applied, obj)
		switch change {
		case changeCreated:
			created = append(created, describeObject(obj))
		case changeUpdated:
			restored = append(restored, describeObject(obj))
		}
	}
	if len(created)+len(restored) > 0 {
		ctrl.LoggerFrom(ctx).Info("applied objects", "created", created, "updated", restored)
		r.event(s.ws, eventTypeNormal, reasonObjectsApplied, "Apply", "%s", describeChanges(created, restored))
	}
	return applied
}

// Changes that applyOwned reports.
const (
	changeNone    = ""
	changeCreated = "created"
	changeUpdated = "updated"
)

// applyOwned applies obj by server-side apply with the Workspace as its
// controller owner. It forces ownership of the fields, because the operator
// owns these objects, and reports whether the object was created or changed.
func (r *WorkspaceReconciler) applyOwned(ctx context.Context, ws *tenancyv1alpha1.Workspace, obj client.Object) (string, error) {
	if err := controllerutil.SetControllerReference(ws, obj, r.Scheme()); err != nil {
		return changeNone, fmt.Errorf("set the owner of %s: %w", describeObject(obj), err)
	}
	current, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return changeNone, fmt.Errorf("copy %s: not a client.Object", describeObject(obj))
	}
	exists := true
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
		if !apierrors.IsNotFound(err) {
			return changeNone, fmt.Errorf("get %s: %w", describeObject(obj), err)
		}
		exists = false
	}

	u, err := tenancy.ToUnstructured(obj)
	if err != nil {
		return changeNone, err
	}
	err = r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(kube.FieldManager), client.ForceOwnership)
	if err != nil {
		return changeNone, fmt.Errorf("apply %s: %w", describeObject(obj), err)
	}
	switch {
	case !exists:
		return changeCreated, nil
	case u.GetResourceVersion() != current.GetResourceVersion():
		return changeUpdated, nil
	}
	return changeNone, nil
}

// clusterRoleExists reads the ClusterRole's metadata from the cache.
func (r *WorkspaceReconciler) clusterRoleExists(ctx context.Context, name string) (bool, error) {
	metadata := &metav1.PartialObjectMetadata{}
	metadata.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"))
	if err := r.Get(ctx, client.ObjectKey{Name: name}, metadata); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get ClusterRole %s: %w", name, err)
	}
	return true, nil
}

// event emits an Event about the Workspace.
func (r *WorkspaceReconciler) event(ws *tenancyv1alpha1.Workspace, eventType, reason, action, note string, args ...any) {
	r.eventAbout(ws, nil, eventType, reason, action, note, args...)
}

// eventAbout emits an Event about regarding, related to related (may be nil).
func (r *WorkspaceReconciler) eventAbout(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(regarding, related, eventType, reason, action, note, args...)
}

func selectKinds(objects []client.Object, kinds ...string) []client.Object {
	var selected []client.Object
	for _, obj := range objects {
		if slices.Contains(kinds, objectKind(obj)) {
			selected = append(selected, obj)
		}
	}
	return selected
}

func countKind(objects []client.Object, kind string) int {
	return len(selectKinds(objects, kind))
}

func objectKind(obj client.Object) string {
	if kind := obj.GetObjectKind().GroupVersionKind().Kind; kind != "" {
		return kind
	}
	switch obj.(type) {
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	case *corev1.ResourceQuota:
		return "ResourceQuota"
	case *corev1.LimitRange:
		return "LimitRange"
	case *pacv2beta3.Policy:
		return "Policy"
	}
	return fmt.Sprintf("%T", obj)
}

// describeObject returns "<Kind> <namespace>/<name>", or "<Kind> <name>"
// for a cluster-scoped object.
func describeObject(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return objectKind(obj) + " " + obj.GetName()
	}
	return objectKind(obj) + " " + obj.GetNamespace() + "/" + obj.GetName()
}

func describeChanges(created, restored []string) string {
	var parts []string
	if len(created) > 0 {
		parts = append(parts, "created "+listNames(created))
	}
	if len(restored) > 0 {
		parts = append(parts, "updated "+listNames(restored))
	}
	return strings.Join(parts, "; ")
}

// listNames joins names, listing at most maxListedInMessage and counting the
// rest.
func listNames(names []string) string {
	if len(names) <= maxListedInMessage {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListedInMessage], ", "), len(names)-maxListedInMessage)
}
