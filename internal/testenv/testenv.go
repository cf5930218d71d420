// Package testenv starts a real control plane (etcd and kube-apiserver from
// bin/, through controller-runtime's envtest) with the operator's CRDs for
// tests.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot returns the repository root, found from this source file's path.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options adjusts the environment.
type Options struct {
	// WithFluxCRDs also installs the Flux CRDs from test/crds/flux.
	WithFluxCRDs bool
	// Webhooks are the webhook configurations to install; envtest points them
	// at its local webhook server and fills in the CA.
	Webhooks envtest.WebhookInstallOptions
}

// New returns an environment with the operator's CRDs. Call Start on it, and
// Stop when done. The binaries come from KUBEBUILDER_ASSETS, or bin/ at the
// repository root when it is unset.
func New(opts Options) *envtest.Environment {
	root := RepoRoot()
	crdPaths := []string{filepath.Join(root, "config", "crd", "bases")}
	if opts.WithFluxCRDs {
		crdPaths = append(crdPaths, filepath.Join(root, "test", "crds", "flux"))
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        crdPaths,
		ErrorIfCRDPathMissing:    true,
		WebhookInstallOptions:    opts.Webhooks,
		ControlPlaneStopTimeout:  defaultStopTimeout,
		ControlPlaneStartTimeout: defaultStartTimeout,
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		env.BinaryAssetsDirectory = filepath.Join(root, "bin")
	}
	return env
}

// Start starts env and returns its rest.Config. When the binaries are
// missing, the error names the make target that builds them.
func Start(env *envtest.Environment) (*rest.Config, error) {
	dir := env.BinaryAssetsDirectory
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("control plane binary %s not found in %s: run `make tools`", name, dir)
		}
	}
	return env.Start()
}
