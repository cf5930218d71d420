// Package framework runs real components next to an envtest control plane for
// the end-to-end tests. It starts the Flux kustomize-controller as a child
// process and serves source artifacts over HTTP. It also publishes
// GitRepository objects whose status points at those artifacts, so that no
// source-controller is needed.
package framework

import (
	"fmt"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WriteKubeconfig provisions user in the started environment env and writes
// a kubeconfig for that user to path, readable only by the owner because it
// contains the user's client key. Use groups such as system:masters to give
// the user rights, because envtest's API server authorizes with RBAC.
func WriteKubeconfig(env *envtest.Environment, user envtest.User, path string) error {
	authenticated, err := env.AddUser(user, nil)
	if err != nil {
		return fmt.Errorf("failed to add user %q to the test environment: %w", user.Name, err)
	}
	kubeconfig, err := authenticated.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to build a kubeconfig for user %q: %w", user.Name, err)
	}
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("failed to write the kubeconfig of user %q: %w", user.Name, err)
	}
	return nil
}
