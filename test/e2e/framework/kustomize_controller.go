package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// Defaults of KustomizeControllerOptions, and the poll interval of the
// readiness check.
const (
	defaultStartTimeout = 2 * time.Minute
	defaultStopTimeout  = 30 * time.Second
	readinessInterval   = 250 * time.Millisecond
)

// KustomizeControllerOptions configures StartKustomizeController.
type KustomizeControllerOptions struct {
	// Binary is the kustomize-controller executable. Defaults to
	// bin/kustomize-controller at the repository root, which
	// hack/build-flux.sh builds.
	Binary string
	// Output receives the controller's stdout and stderr. Defaults to
	// os.Stderr. Tests usually pass GinkgoWriter or an *os.File.
	Output io.Writer
	// LogLevel is the controller's --log-level: trace, debug, info or error.
	// Defaults to info.
	LogLevel string
	// ExtraArgs are appended to the command line, for flags such as
	// --default-service-account or --feature-gates.
	ExtraArgs []string
	// StartTimeout bounds the wait for the controller's readiness endpoint.
	// Defaults to 2 minutes.
	StartTimeout time.Duration
	// StopTimeout is how long stop waits after SIGTERM before it sends
	// SIGKILL. Defaults to 30 seconds.
	StopTimeout time.Duration
}

// StartKustomizeController runs the Flux kustomize-controller as a child
// process against the API server in kubeconfigPath, and returns once the
// controller reports ready on its health endpoint. The controller watches all
// namespaces, runs without leader election, rejects remote kustomize bases,
// and serves metrics and health on random ports of 127.0.0.1.
//
// stop terminates the controller and waits for it to exit. It is safe to call
// more than once. Cancelling ctx also terminates the controller.
func StartKustomizeController(
	ctx context.Context,
	kubeconfigPath string,
	opts KustomizeControllerOptions,
) (stop func(), err error) {
	opts = opts.withDefaults()
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("kustomize-controller binary not found: run hack/build-flux.sh: %w", err)
	}
	if _, err := os.Stat(kubeconfigPath); err != nil {
		return nil, fmt.Errorf("kubeconfig for kustomize-controller not found: %w", err)
	}

	metricsAddr, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}
	healthAddr, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}

	args := []string{
		"--metrics-addr=" + metricsAddr,
		"--health-addr=" + healthAddr,
		"--enable-leader-election=false",
		"--watch-all-namespaces=true",
		"--no-remote-bases=true",
		"--log-encoding=console",
		"--log-level=" + opts.LogLevel,
	}
	args = append(args, opts.ExtraArgs...)

	runCtx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(runCtx, opts.Binary, args...)
	// controller-runtime registers --kubeconfig on Go's flag set, but
	// kustomize-controller v1.9.6 parses only pflag's and so rejects the flag.
	// The KUBECONFIG variable works.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	cmd.Stdout = opts.Output
	cmd.Stderr = opts.Output
	cmd.SysProcAttr = childProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = opts.StopTimeout
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("failed to start %s: %w", opts.Binary, err)
	}

	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		cancel()
		<-exited
	}

	if err := waitReady(runCtx, "http://"+healthAddr+"/readyz", exited, opts.StartTimeout); err != nil {
		stop()
		if exitErr != nil {
			err = fmt.Errorf("%w: %w", err, exitErr)
		}
		return nil, fmt.Errorf("kustomize-controller did not become ready, see its log in the Output writer: %w", err)
	}
	return stop, nil
}

func (opts KustomizeControllerOptions) withDefaults() KustomizeControllerOptions {
	if opts.Binary == "" {
		opts.Binary = filepath.Join(testenv.RepoRoot(), "bin", "kustomize-controller")
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = defaultStopTimeout
	}
	return opts
}

// waitReady polls url until it returns 200 OK, the process exits (exited is
// closed), ctx ends or timeout passes.
func waitReady(ctx context.Context, url string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(readinessInterval)
	defer ticker.Stop()

	httpClient := &http.Client{Timeout: readinessInterval * 4}
	var lastErr error
	for {
		lastErr = checkReady(ctx, httpClient, url)
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, url, lastErr)
		case <-ticker.C:
		}
	}
}

func checkReady(ctx context.Context, httpClient *http.Client, url string) error {
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	response, err := httpClient.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	_, _ = io.Copy(io.Discard, response.Body)
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", response.Status)
	}
	return nil
}

// freeLoopbackAddress returns a 127.0.0.1 address with a port that was free
// a moment ago.
//
// NOTE: another process can take the port between this call and the child's
// bind. The child then exits and StartKustomizeController returns an error.
func freeLoopbackAddress() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port on 127.0.0.1: %w", err)
	}
	defer listener.Close()
	port := listener.Addr().(*net.TCPAddr).Port
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
