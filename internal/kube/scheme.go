// Package kube holds what every part of the operator shares about talking to
// the API server: the scheme and the field manager.
package kube

import (
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// FieldManager is the server-side apply field manager of every object the
// operator writes.
const FieldManager = "trusted-delivery"

// NewScheme returns a scheme with the built-in kinds, the operator's kinds
// and the Flux kinds that it reads or patches.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pacv2beta2.AddToScheme(scheme))
	utilruntime.Must(pacv2beta3.AddToScheme(scheme))
	utilruntime.Must(tenancyv1alpha1.AddToScheme(scheme))
	utilruntime.Must(kustomizev1.AddToScheme(scheme))
	utilruntime.Must(helmv2.AddToScheme(scheme))
	utilruntime.Must(sourcev1.AddToScheme(scheme))
	return scheme
}
