package workspace

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// fluxKind is a Flux kind that deploys with a ServiceAccount: Kustomization
// or HelmRelease.
type fluxKind struct {
	kind       string
	apiVersion string
	// crd is the name of the kind's CustomResourceDefinition.
	crd     string
	version string

	newObject func() client.Object
	// list returns the objects of the kind in namespace.
	list func(ctx context.Context, reader client.Reader, namespace string) ([]client.Object, error)
	// serviceAccount returns spec.serviceAccountName of an object of the
	// kind.
	serviceAccount func(client.Object) string
}

var fluxKinds = []fluxKind{
	{
		kind:       kustomizev1.KustomizationKind,
		apiVersion: kustomizev1.GroupVersion.String(),
		crd:        "kustomizations." + kustomizev1.GroupVersion.Group,
		version:    kustomizev1.GroupVersion.Version,
		newObject:  func() client.Object { return &kustomizev1.Kustomization{} },
		list: func(ctx context.Context, reader client.Reader, namespace string) ([]client.Object, error) {
			list := &kustomizev1.KustomizationList{}
			if err := reader.List(ctx, list, client.InNamespace(namespace)); err != nil {
				return nil, err
			}
			objects := make([]client.Object, 0, len(list.Items))
			for i := range list.Items {
				objects = append(objects, &list.Items[i])
			}
			return objects, nil
		},
		serviceAccount: func(obj client.Object) string {
			return obj.(*kustomizev1.Kustomization).Spec.ServiceAccountName
		},
	},
	{
		kind:       helmv2.HelmReleaseKind,
		apiVersion: helmv2.GroupVersion.String(),
		crd:        "helmreleases." + helmv2.GroupVersion.Group,
		version:    helmv2.GroupVersion.Version,
		newObject:  func() client.Object { return &helmv2.HelmRelease{} },
		list: func(ctx context.Context, reader client.Reader, namespace string) ([]client.Object, error) {
			list := &helmv2.HelmReleaseList{}
			if err := reader.List(ctx, list, client.InNamespace(namespace)); err != nil {
				return nil, err
			}
			objects := make([]client.Object, 0, len(list.Items))
			for i := range list.Items {
				objects = append(objects, &list.Items[i])
			}
			return objects, nil
		},
		serviceAccount: func(obj client.Object) string {
			return obj.(*helmv2.HelmRelease).Spec.ServiceAccountName
		},
	},
}

// fluxWatcher adds the watches on Kustomizations and HelmReleases to the
// running controller once their CRDs are established, so that Flux
// installed after the manager started is picked up without a restart. The
// controller watches the metadata of CRDs. A Flux CRD that appears or
// changes before it is watched enqueues every Workspace, and their
// reconciles call ensure, which adds the watch (controller.Watch with a
// source.Kind) once the CRD is established.
//
// NOTE: a watch stays registered when its CRD is deleted later. The cache
// then logs watch errors until the CRD is back or the manager restarts.
type fluxWatcher struct {
	controller controller.Controller
	cache      cache.Cache
	// reader is the cached client, for CRD metadata.
	reader client.Reader
	// apiReader reads a CRD's status, which the metadata cache lacks.
	apiReader client.Reader
	handler   handler.EventHandler

	mu      sync.Mutex
	watched map[string]bool
}

func newFluxWatcher(c cache.Cache, reader, apiReader client.Reader, h handler.EventHandler) *fluxWatcher {
	return &fluxWatcher{cache: c, reader: reader, apiReader: apiReader, handler: h, watched: map[string]bool{}}
}

// ensure starts the watch of every Flux kind whose CRD is established and
// serves the version that the operator reads, and returns the kinds that
// are watched, in fluxKinds order.
func (w *fluxWatcher) ensure(ctx context.Context) ([]fluxKind, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	var watched []fluxKind
	for _, kind := range fluxKinds {
		if !w.watched[kind.kind] {
			ready, err := w.crdReady(ctx, kind)
			if err != nil {
				return nil, err
			}
			if !ready {
				continue
			}
			src := source.Kind(w.cache, kind.newObject(), w.handler, serviceAccountOrDeletionChanged(kind))
			if err := w.controller.Watch(src); err != nil {
				return nil, fmt.Errorf("watch %s objects: %w", kind.kind, err)
			}
			w.watched[kind.kind] = true
			ctrl.LoggerFrom(ctx).Info("watching Flux objects", "kind", kind.kind)
		}
		watched = append(watched, kind)
	}
	return watched, nil
}

// crdReady reports whether the CRD of kind exists, is established and
// serves kind.version. It reads the cache first, so that a missing CRD
// costs no API call.
func (w *fluxWatcher) crdReady(ctx context.Context, kind fluxKind) (bool, error) {
	metadata := &metav1.PartialObjectMetadata{}
	metadata.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	if err := w.reader.Get(ctx, client.ObjectKey{Name: kind.crd}, metadata); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get CustomResourceDefinition %s: %w", kind.crd, err)
	}

	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	if err := w.apiReader.Get(ctx, client.ObjectKey{Name: kind.crd}, crd); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get CustomResourceDefinition %s: %w", kind.crd, err)
	}
	return crdEstablished(crd) && crdServes(crd, kind.version), nil
}

func crdEstablished(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		condition, ok := c.(map[string]any)
		if ok && condition["type"] == string(apiextensionsv1.Established) && condition["status"] == string(apiextensionsv1.ConditionTrue) {
			return true
		}
	}
	return false
}

func crdServes(crd *unstructured.Unstructured, version string) bool {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		entry, ok := v.(map[string]any)
		if ok && entry["name"] == version && entry["served"] == true {
			return true
		}
	}
	return false
}

// newCRDPredicate passes events of the Flux CRDs that are not watched yet.
func (w *fluxWatcher) newCRDPredicate() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(obj client.Object) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, kind := range fluxKinds {
			if obj.GetName() == kind.crd {
				return !w.watched[kind.kind]
			}
		}
		return false
	})
}

// serviceAccountOrDeletionChanged passes creations, deletions and the
// updates that change spec.serviceAccountName or start a deletion.
func serviceAccountOrDeletionChanged(kind fluxKind) predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return kind.serviceAccount(e.ObjectOld) != kind.serviceAccount(e.ObjectNew) ||
				e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}

// fluxObjectsIn lists the objects of the watched kinds in namespaces,
// skipping the Flux namespace.
func (r *WorkspaceReconciler) fluxObjectsIn(ctx context.Context, kinds []fluxKind, namespaces []string) ([]fluxObject, error) {
	var found []fluxObject
	for _, kind := range kinds {
		for _, namespace := range namespaces {
			if namespace == r.FluxNamespace {
				continue
			}
			objects, err := kind.list(ctx, r.Client, namespace)
			if err != nil {
				return nil, fmt.Errorf("list %s objects in namespace %s: %w", kind.kind, namespace, err)
			}
			for _, obj := range objects {
				found = append(found, fluxObject{kind: kind, obj: obj})
			}
		}
	}
	return found, nil
}

// fluxObject is a Kustomization or HelmRelease with its kind.
type fluxObject struct {
	kind fluxKind
	obj  client.Object
}

func (o fluxObject) String() string {
	return o.kind.kind + " " + o.obj.GetNamespace() + "/" + o.obj.GetName()
}

// sortFluxObjects sorts by kind, namespace and name, for stable status.
func sortFluxObjects(objects []fluxObject) {
	slices.SortFunc(objects, func(a, b fluxObject) int {
		return cmp.Or(
			cmp.Compare(a.kind.kind, b.kind.kind),
			cmp.Compare(a.obj.GetNamespace(), b.obj.GetNamespace()),
			cmp.Compare(a.obj.GetName(), b.obj.GetName()),
		)
	})
}
