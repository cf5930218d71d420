// Package workspace contains the Workspace reconciler. It turns each
// Workspace into namespaces, RBAC, quotas and tenancy policies (computed by
// internal/tenancy) and makes the Flux Kustomizations and HelmReleases in
// those namespaces impersonate the Workspace ServiceAccount. It prunes what
// the spec no longer lists, and tears everything down in order when the
// Workspace is deleted.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// DefaultFluxNamespace is the namespace of the Flux controllers, whose
// objects impersonation never touches.
const DefaultFluxNamespace = "flux-system"

// fluxDeletionRecheckInterval is how often a Workspace being deleted checks
// again whether the Flux objects in its namespaces are gone, on top of the
// watch events that usually report it sooner.
const fluxDeletionRecheckInterval = 30 * time.Second

// WorkspaceReconciler reconciles Workspaces. Create it with its exported
// fields set and call SetupWithManager.
type WorkspaceReconciler struct {
	client.Client
	// APIReader reads CustomResourceDefinitions without the cache, to see
	// whether the Flux CRDs are established. Defaults to the manager's.
	APIReader client.Reader
	// Recorder emits Events. Defaults to the manager's recorder for
	// "workspace-controller".
	Recorder events.EventRecorder
	// AllowedClusterRoles are the ClusterRoles that Workspaces may bind, from
	// --allowed-cluster-roles. Empty means tenancy.DefaultAllowedClusterRoles.
	// The manager's ServiceAccount needs the bind verb on each of them.
	AllowedClusterRoles []string
	// FluxNamespace is never touched by impersonation, even when a
	// Workspace lists it. Defaults to DefaultFluxNamespace.
	FluxNamespace string

	flux *fluxWatcher
}

// workspaceScope is the state that the phases of one reconcile share. A nil
// result means that its phase did not run, so its condition keeps its value.
type workspaceScope struct {
	ws     *tenancyv1alpha1.Workspace
	before *tenancyv1alpha1.Workspace

	// claimed are the spec namespaces that this Workspace claimed in the
	// namespaces phase, sorted. The later phases work in them only.
	claimed []string
	// untouchable are spec namespaces that this pass leaves alone
	// (conflict, terminating, failed to apply); prune keeps the objects in
	// them.
	untouchable map[string]bool

	namespaces *namespacesResult
	rbac       *rbacResult
	policies   *policiesResult
	flux       *fluxResult

	// retry collects transient problems; Reconcile returns them so that
	// the workqueue retries with backoff.
	retry []error
	// finalized is set once the finalizer is removed; the Workspace may be
	// gone, so its status is not written.
	finalized bool
}

// The API server lets a client create a RoleBinding only when the client has
// the bound role's permissions itself or the bind verb on that role. It
// lets a client create a Role only when the client has its rules or the
// escalate verb. So the operator gets bind on the allowed ClusterRoles, whose
// names are the resourceNames below; add every name that
// --allowed-cluster-roles adds. It also gets bind and escalate on Roles for
// spec.deploymentRBAC.rules and spec.teamRBAC.rules. It never needs
// cluster-admin.
//
// +kubebuilder:rbac:groups=tenancy.weave.works,resources=workspaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=tenancy.weave.works,resources=workspaces/status,verbs=get;patch
// +kubebuilder:rbac:groups=tenancy.weave.works,resources=workspaces/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts;resourcequotas;limitranges,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles,verbs=get;list;watch;create;patch;delete;bind;escalate
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=admin;edit;view
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=kustomize.toolkit.fluxcd.io,resources=kustomizations,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=helm.toolkit.fluxcd.io,resources=helmreleases,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings the objects of one Workspace in line with its spec, or
// tears them down when it is being deleted.
func (r *WorkspaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ws := &tenancyv1alpha1.Workspace{}
	if err := r.Get(ctx, req.NamespacedName, ws); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if ws.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(ws, tenancyv1alpha1.Finalizer) {
		if err := r.addFinalizer(ctx, ws); err != nil {
			return ctrl.Result{}, err
		}
	}

	s := &workspaceScope{ws: ws, before: ws.DeepCopy(), untouchable: map[string]bool{}}
	defer func() {
		retErr = errors.Join(retErr, r.patchStatus(ctx, s, retErr))
	}()

	if !ws.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	return r.reconcileNormal(ctx, s)
}

// reconcileNormal runs the phases of a Workspace that is not being deleted.
func (r *WorkspaceReconciler) reconcileNormal(ctx context.Context, s *workspaceScope) (ctrl.Result, error) {
	opts := tenancy.Options{AllowedClusterRoles: r.AllowedClusterRoles}
	if err := tenancy.CheckClusterRoles(s.ws, opts); err != nil {
		s.rbac = &rbacResult{notAllowed: err.Error()}
		return ctrl.Result{}, reconcile.TerminalError(err)
	}

	if err := r.reconcileNamespaces(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	desired, err := tenancy.Generate(withNamespaces(s.ws, s.claimed), opts)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("generate the objects of workspace %s: %w", s.ws.Name, err)
	}
	r.reconcileRBAC(ctx, s, desired)
	r.reconcileQuotas(ctx, s, desired)
	r.reconcilePolicies(ctx, s, desired)
	if err := r.reconcileFluxImpersonation(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.prune(ctx, s, desired); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, errors.Join(s.retry...)
}

// reconcileDelete tears the Workspace down in order. First it waits until
// the Flux objects in its namespaces are gone, so that Flux can still
// impersonate the ServiceAccount while it removes what it applied. Then it
// deletes the RBAC, quotas and policies, orphans or deletes the namespaces,
// and removes the finalizer.
func (r *WorkspaceReconciler) reconcileDelete(ctx context.Context, s *workspaceScope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.ws, tenancyv1alpha1.Finalizer) {
		s.finalized = true
		return ctrl.Result{}, nil
	}
	owned, err := r.ownedNamespaces(ctx, s.ws)
	if err != nil {
		return ctrl.Result{}, err
	}

	remaining, err := r.removeFluxObjects(ctx, s, owned)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(remaining) > 0 {
		ctrl.LoggerFrom(ctx).Info("waiting for Flux objects to be deleted before removing RBAC", "remaining", remaining)
		return ctrl.Result{RequeueAfter: fluxDeletionRecheckInterval}, nil
	}

	if err := r.deleteOwnedObjects(ctx, s, nil); err != nil {
		return ctrl.Result{}, err
	}
	if len(s.retry) > 0 {
		return ctrl.Result{}, errors.Join(s.retry...)
	}
	for i := range owned {
		if err := r.releaseNamespace(ctx, s, &owned[i]); err != nil {
			return ctrl.Result{}, err
		}
	}

	if err := r.removeFinalizer(ctx, s.ws); err != nil {
		return ctrl.Result{}, err
	}
	s.finalized = true
	ctrl.LoggerFrom(ctx).Info("workspace torn down", "namespaces", len(owned), "deletionPolicy", deletionPolicy(s.ws))
	return ctrl.Result{}, nil
}

func (r *WorkspaceReconciler) addFinalizer(ctx context.Context, ws *tenancyv1alpha1.Workspace) error {
	patch := client.MergeFromWithOptions(ws.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(ws, tenancyv1alpha1.Finalizer)
	if err := r.Patch(ctx, ws, patch); err != nil {
		return fmt.Errorf("add finalizer to workspace %s: %w", ws.Name, err)
	}
	return nil
}

// removeFinalizer removes the finalizer with a patch that carries the
// resourceVersion, so that it never drops a finalizer that another
// controller added meanwhile. On a conflict it retries on the latest
// Workspace.
func (r *WorkspaceReconciler) removeFinalizer(ctx context.Context, ws *tenancyv1alpha1.Workspace) error {
	current := ws
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		patch := client.MergeFromWithOptions(current.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(current, tenancyv1alpha1.Finalizer)
		err := r.Patch(ctx, current, patch)
		if !apierrors.IsConflict(err) {
			return err
		}
		latest := &tenancyv1alpha1.Workspace{}
		if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ws), latest); getErr != nil {
			return getErr
		}
		current = latest
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer from workspace %s: %w", ws.Name, err)
	}
	return nil
}

// withNamespaces returns a copy of ws that lists namespaces.
func withNamespaces(ws *tenancyv1alpha1.Workspace, namespaces []string) *tenancyv1alpha1.Workspace {
	copied := ws.DeepCopy()
	copied.Spec.Namespaces = slices.Clone(namespaces)
	return copied
}

func deletionPolicy(ws *tenancyv1alpha1.Workspace) string {
	if ws.Spec.DeletionPolicy == "" {
		return tenancyv1alpha1.DeletionPolicyOrphan
	}
	return ws.Spec.DeletionPolicy
}
