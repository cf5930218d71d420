package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// workspaceResource prefixes object names in messages, as kubectl does.
const workspaceResource = "workspace.tenancy.weave.works"

// workspaceApplier applies Workspaces with server-side apply and reports
// what changed.
type workspaceApplier struct {
	client         client.Client
	out            io.Writer
	dryRun         bool
	forceConflicts bool
}

// applyAll applies every Workspace, going on after a failure, and returns
// the failures joined.
func (a *workspaceApplier) applyAll(ctx context.Context, workspaces []tenancyv1alpha1.Workspace) error {
	var errs []error
	for i := range workspaces {
		if err := a.apply(ctx, &workspaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *workspaceApplier) apply(ctx context.Context, ws *tenancyv1alpha1.Workspace) error {
	desired, err := toUnstructured([]client.Object{ws})
	if err != nil {
		return err
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(tenancyv1alpha1.GroupVersion.WithKind("Workspace"))
	exists := true
	if err := a.client.Get(ctx, client.ObjectKey{Name: ws.Name}, live); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get Workspace %s: %w", ws.Name, err)
		}
		exists = false
	}

	applied := desired[0]
	opts := []client.ApplyOption{client.FieldOwner(tenantsFieldManager)}
	if a.forceConflicts {
		opts = append(opts, client.ForceOwnership)
	}
	if a.dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), opts...); err != nil {
		if apierrors.IsConflict(err) && !a.forceConflicts {
			return fmt.Errorf("apply Workspace %s: %w; rerun with --force-conflicts to take over these fields", ws.Name, err)
		}
		return fmt.Errorf("apply Workspace %s: %w", ws.Name, err)
	}

	verb := "created"
	if exists {
		changed, err := a.changed(live, applied)
		if err != nil {
			return err
		}
		verb = "unchanged"
		if changed {
			verb = "configured"
		}
	}
	suffix := ""
	if a.dryRun {
		suffix = " (server dry run)"
	}
	fmt.Fprintf(a.out, "%s/%s %s%s\n", workspaceResource, ws.Name, verb, suffix)
	if a.dryRun && verb != "unchanged" {
		var before *unstructured.Unstructured
		if exists {
			before = live
		}
		return writeDiff(a.out, ws.Name, before, applied)
	}
	return nil
}

// changed reports whether the apply changed the live object. A real apply
// that changes nothing keeps the resourceVersion. A dry run never changes
// it, so the objects are compared without the fields that the API server
// maintains.
func (a *workspaceApplier) changed(live, applied *unstructured.Unstructured) (bool, error) {
	if !a.dryRun {
		return applied.GetResourceVersion() != live.GetResourceVersion(), nil
	}
	before, err := diffText(live)
	if err != nil {
		return false, err
	}
	after, err := diffText(applied)
	if err != nil {
		return false, err
	}
	return before != after, nil
}

// writeDiff prints a unified diff between the live object (nil when it does
// not exist) and the object after the apply, both without the fields that
// the API server maintains.
func writeDiff(w io.Writer, name string, before, after *unstructured.Unstructured) error {
	beforeText, err := diffText(before)
	if err != nil {
		return err
	}
	afterText, err := diffText(after)
	if err != nil {
		return err
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(beforeText),
		B:        difflib.SplitLines(afterText),
		FromFile: "live/" + name,
		ToFile:   "applied/" + name,
		Context:  3,
	})
	if err != nil {
		return fmt.Errorf("diff Workspace %s: %w", name, err)
	}
	_, err = io.WriteString(w, diff)
	return err
}

// diffText renders an object for the diff, or "" for nil.
func diffText(obj *unstructured.Unstructured) (string, error) {
	if obj == nil {
		return "", nil
	}
	obj = obj.DeepCopy()
	for _, field := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", field)
	}
	unstructured.RemoveNestedField(obj.Object, "status")
	data, err := marshalObject(obj.Object)
	if err != nil {
		return "", fmt.Errorf("render Workspace %s as YAML: %w", obj.GetName(), err)
	}
	return string(data), nil
}
