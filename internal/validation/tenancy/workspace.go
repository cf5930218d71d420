// Package tenancy contains the validating admission webhook of Workspaces: the
// checks that the CRD schema cannot express because they depend on other
// Workspaces or on the manager's ClusterRole allow-list.
package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// WorkspacePath is the path of the handler on the manager's webhook server.
const WorkspacePath = "/validate/workspace"

// WorkspaceValidator is the admission handler of WorkspacePath. It rejects
// a Workspace that lists a namespace that another Workspace already lists,
// or that binds a ClusterRole outside the allow-list.
type WorkspaceValidator struct {
	reader              client.Reader
	decoder             admission.Decoder
	allowedClusterRoles []string
}

// NewWorkspaceValidator returns the handler. reader lists the other
// Workspaces (the manager's cached client will do); allowedClusterRoles is
// the manager's --allowed-cluster-roles, and empty means
// tenancy.DefaultAllowedClusterRoles.
func NewWorkspaceValidator(reader client.Reader, scheme *runtime.Scheme, allowedClusterRoles []string) *WorkspaceValidator {
	return &WorkspaceValidator{
		reader:              reader,
		decoder:             admission.NewDecoder(scheme),
		allowedClusterRoles: slices.Clone(allowedClusterRoles),
	}
}

// SetupWithManager registers the handler at WorkspacePath on the manager's
// webhook server.
func (v *WorkspaceValidator) SetupWithManager(mgr ctrl.Manager) error {
	mgr.GetWebhookServer().Register(WorkspacePath, &webhook.Admission{Handler: v})
	return nil
}

var _ admission.Handler = &WorkspaceValidator{}

// Handle validates CREATE and UPDATE requests and allows the rest. An UPDATE
// that leaves the spec unchanged, or of a Workspace being deleted, is
// allowed, so that the controller can always remove its finalizer.
func (v *WorkspaceValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	ws := &tenancyv1alpha1.Workspace{}
	if err := v.decoder.DecodeRaw(req.Object, ws); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode Workspace: %w", err))
	}
	var old *tenancyv1alpha1.Workspace
	if req.Operation == admissionv1.Update {
		old = &tenancyv1alpha1.Workspace{}
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the old Workspace: %w", err))
		}
		if !ws.DeletionTimestamp.IsZero() || equality.Semantic.DeepEqual(old.Spec, ws.Spec) {
			return admission.Allowed("spec unchanged")
		}
	}

	others := &tenancyv1alpha1.WorkspaceList{}
	if err := v.reader.List(ctx, others); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("list Workspaces to check namespace claims: %w", err))
	}
	if errs := ValidateWorkspace(ws, old, others.Items, v.allowedClusterRoles); len(errs) > 0 {
		status := apierrors.NewInvalid(tenancyv1alpha1.GroupVersion.WithKind("Workspace").GroupKind(), ws.Name, errs).Status()
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
	}
	return admission.Allowed("")
}

// ValidateWorkspace returns what is wrong with ws that the schema does not
// check: a namespace that one of others already lists, and a ClusterRole
// outside allowedClusterRoles (empty means
// tenancy.DefaultAllowedClusterRoles). On an update, old is the stored
// Workspace, and only namespaces that the update adds are checked, so that a
// conflict that existed before does not block unrelated changes. Workspaces
// being deleted do not claim their namespaces any more. The CLI uses it too.
func ValidateWorkspace(ws, old *tenancyv1alpha1.Workspace, others []tenancyv1alpha1.Workspace, allowedClusterRoles []string) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateNamespaceClaims(ws, old, others)...)
	errs = append(errs, validateClusterRoles(ws, allowedClusterRoles)...)
	return errs
}

func validateNamespaceClaims(ws, old *tenancyv1alpha1.Workspace, others []tenancyv1alpha1.Workspace) field.ErrorList {
	claimedBy := map[string]string{}
	for i := range others {
		other := &others[i]
		if other.Name == ws.Name || !other.DeletionTimestamp.IsZero() {
			continue
		}
		for _, namespace := range other.Spec.Namespaces {
			if _, ok := claimedBy[namespace]; !ok {
				claimedBy[namespace] = other.Name
			}
		}
	}

	var errs field.ErrorList
	path := field.NewPath("spec", "namespaces")
	for i, namespace := range ws.Spec.Namespaces {
		if old != nil && slices.Contains(old.Spec.Namespaces, namespace) {
			continue
		}
		if owner, ok := claimedBy[namespace]; ok {
			errs = append(errs, field.Forbidden(path.Index(i),
				fmt.Sprintf("namespace %q is already listed by Workspace %q; a namespace belongs to one Workspace, "+
					"so remove it from that Workspace first", namespace, owner)))
		}
	}
	return errs
}

func validateClusterRoles(ws *tenancyv1alpha1.Workspace, allowedClusterRoles []string) field.ErrorList {
	allowed := tenancy.Options{AllowedClusterRoles: allowedClusterRoles}.ClusterRoleAllowList()
	var errs field.ErrorList
	for _, ref := range tenancy.BoundClusterRoles(ws) {
		if !slices.Contains(allowed, ref.Name) {
			errs = append(errs, field.NotSupported(ref.Field, ref.Name, allowed))
		}
	}
	return errs
}
