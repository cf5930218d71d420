package workspace

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
)

// reconcileFluxImpersonation is the flux impersonation phase. It sets
// spec.serviceAccountName of the Kustomizations and HelmReleases in the claimed
// namespaces that leave it unset, and reports those that name another
// ServiceAccount without changing them. The Flux namespace is skipped.
func (r *WorkspaceReconciler) reconcileFluxImpersonation(ctx context.Context, s *workspaceScope) error {
	kinds, err := r.flux.ensure(ctx)
	if err != nil {
		return err
	}
	result := &fluxResult{serviceAccount: s.ws.ServiceAccount()}
	s.flux = result
	if len(kinds) == 0 {
		result.notInstalled = true
		return nil
	}
	for _, kind := range fluxKinds {
		if !slices.ContainsFunc(kinds, func(k fluxKind) bool { return k.kind == kind.kind }) {
			result.missingKinds = append(result.missingKinds, kind.kind)
		}
	}

	objects, err := r.fluxObjectsIn(ctx, kinds, s.claimed)
	if err != nil {
		return err
	}
	sortFluxObjects(objects)
	reported := reportedMismatches(s.before)
	for _, o := range objects {
		state, err := r.impersonate(ctx, s, o, reported)
		if err != nil {
			result.failures = append(result.failures, err.Error())
			s.retry = append(s.retry, err)
			continue
		}
		if state == "" {
			continue
		}
		result.objects = append(result.objects, tenancyv1alpha1.FluxObjectStatus{
			Kind:      o.kind.kind,
			Namespace: o.obj.GetNamespace(),
			Name:      o.obj.GetName(),
			State:     state,
		})
	}
	return nil
}

// impersonate makes one Flux object use the Workspace ServiceAccount when
// it sets none, and returns its state, or "" for an object being deleted
// without a ServiceAccount, which is left as it is.
func (r *WorkspaceReconciler) impersonate(ctx context.Context, s *workspaceScope, o fluxObject, reported map[string]bool) (string, error) {
	want := s.ws.ServiceAccount()
	got := o.kind.serviceAccount(o.obj)
	switch {
	case got == want:
		return tenancyv1alpha1.FluxObjectStateImpersonating, nil
	case got == "" && !o.obj.GetDeletionTimestamp().IsZero():
		return "", nil
	case got == "":
		if err := r.setServiceAccount(ctx, o, want); err != nil {
			return "", err
		}
		ctrl.LoggerFrom(ctx).Info("set spec.serviceAccountName", "object", o.String(), "serviceAccount", want)
		r.event(s.ws, eventTypeNormal, reasonServiceAccountSet, "Impersonate",
			"set spec.serviceAccountName of %s to %s", o, want)
		r.eventAbout(o.obj, s.ws, eventTypeNormal, reasonServiceAccountSet, "Impersonate",
			"set spec.serviceAccountName to %s, the ServiceAccount of Workspace %s", want, s.ws.Name)
		return tenancyv1alpha1.FluxObjectStateImpersonating, nil
	default:
		s.flux.mismatches = append(s.flux.mismatches, fmt.Sprintf("%s uses ServiceAccount %s", o, got))
		if !reported[o.String()] {
			ctrl.LoggerFrom(ctx).Info("Flux object uses another ServiceAccount; left unchanged",
				"object", o.String(), "serviceAccount", got, "want", want)
			r.event(s.ws, eventTypeWarning, tenancyv1alpha1.ServiceAccountMismatchReason, "Impersonate",
				"%s uses ServiceAccount %s instead of %s; it was left unchanged", o, got, want)
			r.eventAbout(o.obj, s.ws, eventTypeWarning, tenancyv1alpha1.ServiceAccountMismatchReason, "Impersonate",
				"spec.serviceAccountName is %s, but Workspace %s deploys as %s; set it to %s or remove it", got, s.ws.Name, want, want)
		}
		return tenancyv1alpha1.FluxObjectStateMismatch, nil
	}
}

// setServiceAccount sets spec.serviceAccountName by server-side apply of a
// configuration that contains only that field, so that the operator's field
// manager owns nothing else of the object.
func (r *WorkspaceReconciler) setServiceAccount(ctx context.Context, o fluxObject, serviceAccount string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(o.kind.apiVersion)
	u.SetKind(o.kind.kind)
	u.SetNamespace(o.obj.GetNamespace())
	u.SetName(o.obj.GetName())
	if err := unstructured.SetNestedField(u.Object, serviceAccount, "spec", "serviceAccountName"); err != nil {
		return fmt.Errorf("build the patch of %s: %w", o, err)
	}
	err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(kube.FieldManager))
	if err == nil {
		return nil
	}
	// An object deleted since the list makes the apply try to create it,
	// which fails validation; that is no failure of the Workspace.
	current := o.kind.newObject()
	if getErr := r.Get(ctx, client.ObjectKeyFromObject(o.obj), current); apierrors.IsNotFound(getErr) {
		return nil
	}
	return fmt.Errorf("set spec.serviceAccountName of %s: %w", o, err)
}

// removeFluxObjects is the first step of deleting a Workspace. With
// deletionPolicy Delete it deletes the Kustomizations and HelmReleases in
// the namespaces; with Orphan it leaves that to their owners. It returns the
// objects that still exist, for which the deletion waits.
func (r *WorkspaceReconciler) removeFluxObjects(ctx context.Context, s *workspaceScope, owned []corev1.Namespace) ([]string, error) {
	kinds, err := r.flux.ensure(ctx)
	if err != nil {
		return nil, err
	}
	result := &fluxResult{serviceAccount: s.ws.ServiceAccount(), deleting: true}
	s.flux = result
	if len(kinds) == 0 {
		return nil, nil
	}
	namespaces := make([]string, 0, len(owned))
	for i := range owned {
		namespaces = append(namespaces, owned[i].Name)
	}
	objects, err := r.fluxObjectsIn(ctx, kinds, namespaces)
	if err != nil {
		return nil, err
	}
	sortFluxObjects(objects)

	deleteThem := deletionPolicy(s.ws) == tenancyv1alpha1.DeletionPolicyDelete
	for _, o := range objects {
		result.waiting = append(result.waiting, o.String())
		if !deleteThem || !o.obj.GetDeletionTimestamp().IsZero() {
			continue
		}
		if err := r.Delete(ctx, o.obj); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete %s of workspace %s: %w", o, s.ws.Name, err)
		}
		r.event(s.ws, eventTypeNormal, reasonFluxObjectDeleted, "Delete",
			"deleted %s before removing the ServiceAccount it deploys with (deletionPolicy Delete)", o)
	}
	result.deletesObjects = deleteThem
	return result.waiting, nil
}

// reportedMismatches returns the Flux objects that the last status already
// reported as ServiceAccountMismatch, so that their Warning is not repeated.
func reportedMismatches(ws *tenancyv1alpha1.Workspace) map[string]bool {
	reported := map[string]bool{}
	for _, o := range ws.Status.FluxObjects {
		if o.State == tenancyv1alpha1.FluxObjectStateMismatch {
			reported[o.Kind+" "+o.Namespace+"/"+o.Name] = true
		}
	}
	return reported
}
