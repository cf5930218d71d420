package workspace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// Field indexes on Workspaces.
const (
	// namespacesIndex maps a namespace name to the Workspaces that list it.
	namespacesIndex = "spec.namespaces"
	// clusterRolesIndex maps a ClusterRole name to the Workspaces that bind
	// it.
	clusterRolesIndex = "boundClusterRoles"
)

// recorderName is the reporting controller of the Events.
const recorderName = "workspace-controller"

// SetupWithManager registers the reconciler, its field indexes and its
// watches. The watches on Kustomizations and HelmReleases are added later,
// when their CRDs are established; see fluxWatcher.
func (r *WorkspaceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder(recorderName)
	}
	if r.FluxNamespace == "" {
		r.FluxNamespace = DefaultFluxNamespace
	}
	if err := indexWorkspaces(context.Background(), mgr); err != nil {
		return err
	}
	r.flux = newFluxWatcher(mgr.GetCache(), r.Client, r.APIReader,
		handler.EnqueueRequestsFromMapFunc(r.requestsForNamespacedObject))

	crdMetadata := &metav1.PartialObjectMetadata{}
	crdMetadata.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))

	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&tenancyv1alpha1.Workspace{}, builder.WithPredicates(specOrDeletionChanged())).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&corev1.ResourceQuota{}).
		Owns(&corev1.LimitRange{}).
		Owns(&pacv2beta3.Policy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForNamespace)).
		Watches(&tenancyv1alpha1.Workspace{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForSharingWorkspaces),
			builder.WithPredicates(specOrDeletionChanged())).
		WatchesMetadata(&rbacv1.ClusterRole{},
			handler.EnqueueRequestsFromMapFunc(r.requestsForClusterRole),
			builder.WithPredicates(createOrDelete())).
		Watches(crdMetadata,
			handler.EnqueueRequestsFromMapFunc(r.requestsForAllWorkspaces),
			builder.WithPredicates(r.flux.newCRDPredicate())).
		Named("workspace").
		Build(r)
	if err != nil {
		return fmt.Errorf("build the workspace controller: %w", err)
	}
	r.flux.controller = c
	return nil
}

// indexWorkspaces registers the field indexes that map namespaces and
// ClusterRoles to Workspaces.
func indexWorkspaces(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	err := indexer.IndexField(ctx, &tenancyv1alpha1.Workspace{}, namespacesIndex, func(obj client.Object) []string {
		return obj.(*tenancyv1alpha1.Workspace).Spec.Namespaces
	})
	if err != nil {
		return fmt.Errorf("index Workspaces by namespace: %w", err)
	}
	err = indexer.IndexField(ctx, &tenancyv1alpha1.Workspace{}, clusterRolesIndex, func(obj client.Object) []string {
		var names []string
		for _, ref := range tenancy.BoundClusterRoles(obj.(*tenancyv1alpha1.Workspace)) {
			names = append(names, ref.Name)
		}
		return names
	})
	if err != nil {
		return fmt.Errorf("index Workspaces by ClusterRole: %w", err)
	}
	return nil
}

// specOrDeletionChanged passes creations, deletions, spec changes and the
// start of a deletion, but not status updates.
func specOrDeletionChanged() predicate.Predicate {
	return predicate.Or(
		predicate.GenerationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		}},
	)
}

// createOrDelete passes only creations and deletions.
func createOrDelete() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// requestsForNamespace enqueues the Workspaces that label the namespace as
// theirs and those that list it.
func (r *WorkspaceReconciler) requestsForNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	names := map[string]bool{}
	for _, key := range []string{tenancyv1alpha1.TenantLabel, tenancyv1alpha1.WorkspaceLabel} {
		if name := obj.GetLabels()[key]; name != "" {
			names[name] = true
		}
	}
	r.addListingWorkspaces(ctx, obj.GetName(), names)
	return requestsFor(names)
}

// requestsForNamespacedObject enqueues the Workspaces of the object's
// namespace.
func (r *WorkspaceReconciler) requestsForNamespacedObject(ctx context.Context, obj client.Object) []reconcile.Request {
	namespace := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: obj.GetNamespace()}, namespace); err != nil {
		// A namespace that is gone has no Workspace objects left to update;
		// the Workspaces that list it still get the request below.
		namespace.Name = obj.GetNamespace()
	}
	return r.requestsForNamespace(ctx, namespace)
}

// requestsForSharingWorkspaces enqueues the other Workspaces that list a
// namespace of the changed one, because a claim may have moved.
func (r *WorkspaceReconciler) requestsForSharingWorkspaces(ctx context.Context, obj client.Object) []reconcile.Request {
	ws := obj.(*tenancyv1alpha1.Workspace)
	names := map[string]bool{}
	for _, namespace := range ws.Spec.Namespaces {
		r.addListingWorkspaces(ctx, namespace, names)
	}
	delete(names, ws.Name)
	return requestsFor(names)
}

// requestsForClusterRole enqueues the Workspaces that bind the ClusterRole,
// so that one waiting for it proceeds as soon as it is created.
func (r *WorkspaceReconciler) requestsForClusterRole(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &tenancyv1alpha1.WorkspaceList{}
	if err := r.List(ctx, list, client.MatchingFields{clusterRolesIndex: obj.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Workspaces that bind a ClusterRole", "clusterRole", obj.GetName())
		return nil
	}
	return workspaceRequests(list.Items)
}

// requestsForAllWorkspaces enqueues every Workspace.
func (r *WorkspaceReconciler) requestsForAllWorkspaces(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &tenancyv1alpha1.WorkspaceList{}
	if err := r.List(ctx, list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Workspaces after a Flux CRD change")
		return nil
	}
	return workspaceRequests(list.Items)
}

// addListingWorkspaces adds the names of the Workspaces that list namespace.
func (r *WorkspaceReconciler) addListingWorkspaces(ctx context.Context, namespace string, names map[string]bool) {
	list := &tenancyv1alpha1.WorkspaceList{}
	if err := r.List(ctx, list, client.MatchingFields{namespacesIndex: namespace}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list Workspaces that list a namespace", "namespace", namespace)
		return
	}
	for i := range list.Items {
		names[list.Items[i].Name] = true
	}
}

func requestsFor(names map[string]bool) []reconcile.Request {
	requests := make([]reconcile.Request, 0, len(names))
	for name := range names {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
	}
	return requests
}

func workspaceRequests(items []tenancyv1alpha1.Workspace) []reconcile.Request {
	requests := make([]reconcile.Request, 0, len(items))
	for i := range items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Name: items[i].Name}})
	}
	return requests
}
