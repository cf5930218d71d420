//go:build tools

// Package flux pins the Flux kustomize-controller that the end-to-end tests
// run as a child process. hack/build-flux.sh builds it into bin/.
package flux

import (
	_ "github.com/fluxcd/kustomize-controller"
)
