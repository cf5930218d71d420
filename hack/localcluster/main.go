// Command localcluster runs a local Kubernetes control plane for the demo and
// for manual testing: etcd and kube-apiserver from bin/, started on loopback
// through controller-runtime's envtest, with the operator's CRDs and the Flux
// CRDs installed. It writes an admin kubeconfig, a ready marker and, with
// --webhook-cert-dir, a serving certificate for a webhook server on loopback.
// It runs until SIGINT or SIGTERM, when it stops kube-apiserver and etcd.
//
// The control plane has no controller-manager and no scheduler: namespaces
// that are deleted stay Terminating, owner references are not garbage
// collected and pods are never scheduled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the command-line settings.
type options struct {
	kubeconfig   string
	readyFile    string
	binDir       string
	crdDirs      string
	certDir      string
	startTimeout time.Duration
	stopTimeout  time.Duration
	attachOutput bool
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", ".demo/kubeconfig",
		"Path to write the kubeconfig of the admin user (group system:masters) to. "+
			"It is written once the CRDs are installed and removed on shutdown.")
	fs.StringVar(&o.readyFile, "ready-file", ".demo/localcluster.ready",
		"Path of the ready marker, created after the kubeconfig and removed on shutdown. "+
			"It contains the API server URL.")
	fs.StringVar(&o.binDir, "bin-dir", "bin",
		"Directory that contains the etcd and kube-apiserver binaries, which make tools builds.")
	fs.StringVar(&o.crdDirs, "crd-dirs", "config/crd/bases,test/crds/flux,test/crds/openreports",
		"Comma-separated directories of CRD manifests to install; a directory that does not exist is skipped.")
	fs.StringVar(&o.certDir, "webhook-cert-dir", "",
		"Directory to write a webhook serving certificate for localhost and 127.0.0.1 to (tls.crt, tls.key, "+
			"and ca.crt to trust it), for a manager that runs on this machine. Empty writes none.")
	fs.DurationVar(&o.startTimeout, "start-timeout", 2*time.Minute,
		"Maximum time for etcd and for kube-apiserver each to start serving.")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second,
		"Maximum time for kube-apiserver and for etcd each to stop after SIGTERM.")
	fs.BoolVar(&o.attachOutput, "attach-output", false,
		"Copy the output of etcd and kube-apiserver to this program's stdout and stderr.")
}

func main() {
	// A FlagSet of its own, because controller-runtime registers --kubeconfig
	// on flag.CommandLine with a different meaning (the config to read).
	fs := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ExitOnError)
	var opts options
	opts.bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n", fs.Name())
		fmt.Fprintln(fs.Output(),
			"Runs etcd and kube-apiserver on 127.0.0.1 with the operator's CRDs until SIGINT or SIGTERM.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:]) // ExitOnError exits on invalid flags
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments %q: localcluster takes only flags\n", fs.Args())
		os.Exit(2)
	}

	// envtest logs through controller-runtime's logger, so set it before Start.
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	log := ctrl.Log.WithName("localcluster")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, log, opts); err != nil {
		log.Error(err, "local control plane failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, log logr.Logger, opts options) error {
	// A marker or kubeconfig left by a run that was killed would point at a
	// dead API server, so remove both before starting.
	if err := removeStateFiles(opts); err != nil {
		return err
	}

	env, err := newEnvironment(log, opts)
	if err != nil {
		return err
	}

	log.Info("starting etcd and kube-apiserver", "binDir", opts.binDir, "crdDirs", env.CRDDirectoryPaths)
	started := time.Now()
	if _, err := env.Start(); err != nil {
		// Start can fail after etcd or kube-apiserver came up, so stop whatever runs.
		if stopErr := env.Stop(); stopErr != nil {
			log.Error(stopErr, "failed to stop the control plane after a failed start")
		}
		return fmt.Errorf("failed to start the control plane (rerun with --attach-output to see "+
			"the output of etcd and kube-apiserver): %w", err)
	}
	log.Info("control plane started", "url", env.Config.Host, "crds", len(env.CRDs),
		"duration", time.Since(started).Round(time.Millisecond))

	serveErr := serve(ctx, log, env, opts)

	log.Info("stopping kube-apiserver and etcd")
	if err := env.Stop(); err != nil {
		return errors.Join(serveErr, fmt.Errorf("failed to stop the control plane: %w", err))
	}
	if err := removeStateFiles(opts); err != nil {
		return errors.Join(serveErr, err)
	}
	log.Info("control plane stopped")
	return serveErr
}

// newEnvironment configures envtest with explicit binary paths, so that
// --bin-dir wins over KUBEBUILDER_ASSETS and TEST_ASSET_* in the environment.
func newEnvironment(log logr.Logger, opts options) (*envtest.Environment, error) {
	binDir, err := filepath.Abs(opts.binDir)
	if err != nil {
		return nil, fmt.Errorf("invalid --bin-dir %q: %w", opts.binDir, err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("control plane binary %s not found in --bin-dir %s: run `make tools`: %w",
				name, binDir, err)
		}
	}

	crdDirs, err := existingDirs(log, opts.crdDirs)
	if err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    binDir,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    false,
		ControlPlaneStartTimeout: opts.startTimeout,
		ControlPlaneStopTimeout:  opts.stopTimeout,
		AttachControlPlaneOutput: opts.attachOutput,
	}
	// envtest generates a serving certificate for its local webhook server on
	// every Start; --webhook-cert-dir gets a copy of it.
	env.WebhookInstallOptions.LocalServingHost = "127.0.0.1"
	env.ControlPlane.GetAPIServer().Path = filepath.Join(binDir, "kube-apiserver")
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(binDir, "etcd")}
	env.ControlPlane.KubectlPath = filepath.Join(binDir, "kubectl")
	return env, nil
}

// existingDirs splits the comma-separated list and keeps the directories that
// exist, logging the ones it skips. A missing directory is not an error,
// because another target writes some of them (`make flux-crds` writes test/crds/flux).
func existingDirs(log logr.Logger, list string) ([]string, error) {
	var dirs []string
	for _, dir := range strings.Split(list, ",") {
		dir = strings.TrimSpace(dir)
		if dir == "" {
			continue
		}
		info, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			log.Info("skipping a CRD directory that does not exist", "dir", dir)
			continue
		case err != nil:
			return nil, fmt.Errorf("failed to read CRD directory %s in --crd-dirs: %w", dir, err)
		case !info.IsDir():
			return nil, fmt.Errorf("invalid --crd-dirs entry %s: not a directory", dir)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// serve writes the kubeconfig and the ready marker, then blocks until ctx is
// done.
func serve(ctx context.Context, log logr.Logger, env *envtest.Environment, opts options) error {
	admin, err := env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 100, Burst: 200})
	if err != nil {
		return fmt.Errorf("failed to add the admin user: %w", err)
	}
	if ctx.Err() != nil {
		log.Info("received a stop signal while starting")
		return nil
	}
	if opts.certDir != "" {
		if err := writeWebhookCert(env.WebhookInstallOptions, opts.certDir); err != nil {
			return err
		}
		log.Info("wrote the webhook serving certificate", "dir", opts.certDir)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to build the admin kubeconfig: %w", err)
	}
	// The kubeconfig contains the admin's client key, so only the owner may read it.
	if err := writeFileAtomic(opts.kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("failed to write --kubeconfig: %w", err)
	}
	if err := writeFileAtomic(opts.readyFile, []byte(env.Config.Host+"\n"), 0o644); err != nil {
		return fmt.Errorf("failed to write --ready-file: %w", err)
	}
	log.Info("control plane ready; stop it with SIGINT or SIGTERM",
		"kubeconfig", opts.kubeconfig, "readyFile", opts.readyFile, "pid", os.Getpid())

	<-ctx.Done()
	log.Info("received a stop signal")
	return nil
}

// writeWebhookCert copies the serving certificate and key that envtest
// generated to dir, with the CA data that a webhook configuration needs in
// its caBundle to trust them.
func writeWebhookCert(webhooks envtest.WebhookInstallOptions, dir string) error {
	files := []struct {
		name string
		perm os.FileMode
	}{
		{name: "tls.crt", perm: 0o644},
		{name: "tls.key", perm: 0o600},
	}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(webhooks.LocalServingCertDir, file.name))
		if err != nil {
			return fmt.Errorf("failed to read the webhook serving certificate: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, file.name), data, file.perm); err != nil {
			return fmt.Errorf("failed to write --webhook-cert-dir: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, "ca.crt"), webhooks.LocalServingCAData, 0o644); err != nil {
		return fmt.Errorf("failed to write --webhook-cert-dir: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames it,
// so that a reader polling for path never sees a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("failed to create a temporary file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to set the mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to rename %s to %s: %w", tmp.Name(), path, err)
	}
	return nil
}

func removeStateFiles(opts options) error {
	for _, path := range []string{opts.readyFile, opts.kubeconfig} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to remove %s: %w", path, err)
		}
	}
	return nil
}
