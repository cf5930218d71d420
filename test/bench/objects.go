package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trusted-delivery/trusted-delivery/internal/policy/policytest"
)

type benchObject struct {
	name string
	obj  *unstructured.Unstructured
	size int
}

// benchObjects returns a typical Deployment (2 containers) and one of about
// 200 KiB of JSON (40 containers of 60 env vars each).
func benchObjects() []benchObject {
	typical, typicalSize := policytest.Deployment(2, 5)
	large, largeSize := policytest.Deployment(40, 60)
	return []benchObject{{"typical", typical, typicalSize}, {"large", large, largeSize}}
}
