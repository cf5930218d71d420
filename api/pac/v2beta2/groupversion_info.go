// Package v2beta2 contains the pac.weave.works/v2beta2 policy API: Policy,
// PolicySet and PolicyConfig. Policy and PolicyConfig share their schema with
// v2beta3, so the API server converts between the two without a webhook.
// +kubebuilder:object:generate=true
// +groupName=pac.weave.works
package v2beta2

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "pac.weave.works", Version: "v2beta2"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
