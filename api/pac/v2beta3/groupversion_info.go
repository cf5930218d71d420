// Package v2beta3 contains the pac.weave.works/v2beta3 policy API: Policy
// and PolicyConfig. It is the storage version; v2beta2 serves the same schema.
// +kubebuilder:object:generate=true
// +groupName=pac.weave.works
package v2beta3

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "pac.weave.works", Version: "v2beta3"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
