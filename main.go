// Command manager runs the Trusted Delivery operator: the Workspace and policy
// controllers, the admission webhooks and the webhook configuration they need.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsfilters "sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	policycontrollers "github.com/trusted-delivery/trusted-delivery/controllers/policy"
	"github.com/trusted-delivery/trusted-delivery/controllers/webhookconfig"
	"github.com/trusted-delivery/trusted-delivery/controllers/workspace"
	"github.com/trusted-delivery/trusted-delivery/internal/admission"
	"github.com/trusted-delivery/trusted-delivery/internal/audit"
	"github.com/trusted-delivery/trusted-delivery/internal/certs"
	"github.com/trusted-delivery/trusted-delivery/internal/events"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
	"github.com/trusted-delivery/trusted-delivery/internal/validation/pac"
	tenancyvalidation "github.com/trusted-delivery/trusted-delivery/internal/validation/tenancy"
)

// options are the manager's command-line settings.
type options struct {
	webhooks            webhookconfig.Options
	sinks               report.SinkOptions
	auditOpts           audit.Options
	metricsAddr         string
	metricsSecure       bool
	probeAddr           string
	leaderElect         bool
	leaderElectionID    string
	namespace           string
	webhookPort         int
	webhookHost         string
	webhookCertDir      string
	gracefulShutdown    time.Duration
	allowedClusterRoles string
	fluxNamespace       string
	policyTimeout       time.Duration
	policyParallelism   int
	gcPercent           int
	logLevel            string
	logFormat           string
	enableHTTP2         bool
}

func (o *options) bind(fs *flag.FlagSet) {
	o.webhooks.BindFlags(fs)
	o.auditOpts.BindFlags(fs)
	o.sinks.BindFlags(fs)

	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint, for example :8443 or 127.0.0.1:8080; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS and require a token that the API server authenticates and authorizes.")

	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"Address of the /healthz and /readyz endpoints.")

	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader with a Lease so that one replica at a time reconciles Workspaces, writes status and audits; every replica serves the webhooks.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "trusted-delivery.pac.weave.works",
		"Name of the leader election Lease in --namespace.")

	fs.StringVar(&o.namespace, "namespace", defaultNamespace(),
		"Namespace the operator runs in; it holds the webhook certificate Secret and the Lease, and "+
			"policies are not enforced in it. Defaults to $POD_NAMESPACE or trusted-delivery-system.")

	fs.IntVar(&o.webhookPort, "webhook-port", webhook.DefaultPort,
		"Port of the admission webhook server.")
	fs.StringVar(&o.webhookHost, "webhook-host", "",
		"Address the webhook server listens on. When set, the manager runs outside a cluster and the "+
			"webhook configurations point the API server at https://localhost:<webhook-port>.")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "",
		"Directory of the webhook serving certificate (tls.crt, tls.key). Defaults to a temporary directory.")

	fs.DurationVar(&o.gracefulShutdown, "graceful-shutdown-timeout", 30*time.Second,
		"How long to wait for controllers and servers to stop after SIGTERM.")

	fs.StringVar(&o.allowedClusterRoles, "allowed-cluster-roles", strings.Join(tenancy.DefaultAllowedClusterRoles, ","),
		"Comma-separated ClusterRoles that Workspaces may bind in spec.deploymentRBAC and spec.teamRBAC. "+
			"The manager's ServiceAccount needs the bind verb on each of them.")
	fs.StringVar(&o.fluxNamespace, "flux-namespace", workspace.DefaultFluxNamespace,
		"Namespace of the Flux controllers; the operator never sets spec.serviceAccountName of the "+
			"Kustomizations and HelmReleases in it.")

	fs.DurationVar(&o.policyTimeout, "policy-timeout", 2*time.Second,
		"Deadline of one policy on one object; a policy that runs longer yields an error result, never a violation.")
	fs.IntVar(&o.policyParallelism, "policy-parallelism", 0,
		"Maximum number of policies evaluated at once for one object; 0 means GOMAXPROCS.")
	fs.IntVar(&o.gcPercent, "gc-percent", admission.DefaultGCPercent,
		"Garbage collection target percentage, as GOGC: higher values collect less often during admission "+
			"reviews and use more memory. The GOGC environment variable takes precedence unless this flag is given.")

	fs.StringVar(&o.logLevel, "log-level", "info",
		"Log level: error, info, debug, or a number of verbosity (1 = debug, 2 and more = trace).")
	fs.StringVar(&o.logFormat, "log-format", "json",
		"Log format: json (for log collectors) or console (for people).")

	fs.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Serve HTTP/2 on the webhook and metrics servers; off by default because of the HTTP/2 "+
			"rapid reset vulnerabilities (CVE-2023-44487).")
}

// validate checks the flag values that the manager cannot start with, and
// fills in the webhook options that depend on other flags. It returns every
// problem at once.
func (o *options) validate() error {
	var errs []error
	if o.gcPercent < 1 {
		errs = append(errs, fmt.Errorf("invalid --gc-percent %d: use a positive percentage "+
			"(set GOGC=off in the environment to turn collection off)", o.gcPercent))
	}
	if o.policyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid --policy-timeout %s: use a positive duration such as 2s", o.policyTimeout))
	}
	if o.policyParallelism < 0 {
		errs = append(errs, fmt.Errorf("invalid --policy-parallelism %d: use 0 for GOMAXPROCS or a positive number", o.policyParallelism))
	}
	if o.webhookPort < 1 || o.webhookPort > 65535 {
		errs = append(errs, fmt.Errorf("invalid --webhook-port %d: use a port from 1 to 65535", o.webhookPort))
	}
	if err := o.auditOpts.Validate(); err != nil {
		errs = append(errs, err)
	}
	o.webhooks.Namespace = o.namespace
	o.webhooks.WebhookHost = o.webhookHost
	o.webhooks.WebhookPort = o.webhookPort
	if err := o.webhooks.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "trusted-delivery-system"
}

// newLogger builds the zap logger from --log-level and --log-format.
func newLogger(level, format string) (zapOption zap.Opts, err error) {
	var lvl zapcore.Level
	switch level {
	case "error":
		lvl = zapcore.ErrorLevel
	case "info":
		lvl = zapcore.InfoLevel
	case "debug":
		lvl = zapcore.DebugLevel
	default:
		var v int
		if _, scanErr := fmt.Sscanf(level, "%d", &v); scanErr != nil || v < 0 {
			return nil, fmt.Errorf("invalid --log-level %q: use error, info, debug or a verbosity number", level)
		}
		lvl = zapcore.Level(-v)
	}
	var development bool
	switch format {
	case "json":
	case "console":
		development = true
	default:
		return nil, fmt.Errorf("invalid --log-format %q: use json or console", format)
	}
	return func(o *zap.Options) {
		o.Development = development
		o.Level = lvl
		if !development {
			o.TimeEncoder = zapcore.RFC3339NanoTimeEncoder
		}
	}, nil
}

func main() {
	var opts options
	opts.bind(flag.CommandLine)
	flag.Parse()

	logOpt, err := newLogger(opts.logLevel, opts.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(logOpt))
	log := ctrl.Log.WithName("setup")
	if err := opts.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	gcPercentSet := false
	flag.Visit(func(f *flag.Flag) { gcPercentSet = gcPercentSet || f.Name == "gc-percent" })
	log.Info("garbage collection target", "gcPercent", admission.SetGCPercent(opts.gcPercent, gcPercentSet))

	if err := run(opts); err != nil {
		log.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}

func run(opts options) error {
	log := ctrl.Log.WithName("setup")

	var tlsOpts []func(*tls.Config)
	if !opts.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   opts.metricsAddr,
		SecureServing: opts.metricsSecure,
		TLSOpts:       tlsOpts,
	}
	if opts.metricsSecure {
		metricsOpts.FilterProvider = metricsfilters.WithAuthenticationAndAuthorization
	}

	certDir := opts.webhookCertDir
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	certificates, err := certs.New(opts.webhooks.CertificateOptions(certDir))
	if err != nil {
		return fmt.Errorf("failed to set up the webhook certificates: %w", err)
	}
	webhookOpts := webhook.Options{
		Host:    opts.webhookHost,
		Port:    opts.webhookPort,
		CertDir: certDir,
		TLSOpts: append(tlsOpts, certificates.ConfigureTLS),
	}

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load the kubeconfig: %w", err)
	}

	scheme := kube.NewScheme()
	if err := report.RegisterScheme(scheme); err != nil {
		return fmt.Errorf("failed to register the report kinds: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	gracefulShutdown := opts.gracefulShutdown
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cache.Options{ByObject: report.CacheByObject()},
		Metrics:                       metricsOpts,
		WebhookServer:                 webhook.NewServer(webhookOpts),
		HealthProbeBindAddress:        opts.probeAddr,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              opts.leaderElectionID,
		LeaderElectionNamespace:       opts.namespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &gracefulShutdown,
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}

	if err := certificates.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("failed to set up the webhook certificates: %w", err)
	}

	engine := policy.NewEngine(policy.Options{Timeout: opts.policyTimeout, Parallelism: opts.policyParallelism})
	if err := policycontrollers.Setup(mgr, engine); err != nil {
		return fmt.Errorf("failed to set up the policy controllers: %w", err)
	}

	allowedClusterRoles := splitList(opts.allowedClusterRoles)
	if err := (&workspace.WorkspaceReconciler{
		Client:              mgr.GetClient(),
		APIReader:           mgr.GetAPIReader(),
		Recorder:            mgr.GetEventRecorder("workspace-controller"),
		AllowedClusterRoles: allowedClusterRoles,
		FluxNamespace:       opts.fluxNamespace,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the Workspace controller: %w", err)
	}
	workspaceValidator := tenancyvalidation.NewWorkspaceValidator(mgr.GetClient(), mgr.GetScheme(), allowedClusterRoles)
	if err := workspaceValidator.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the Workspace webhook: %w", err)
	}

	sinks, err := report.NewSinks(ctx, mgr, opts.sinks)
	if err != nil {
		return fmt.Errorf("failed to set up the violation sinks: %w", err)
	}
	auditor, err := audit.New(mgr, engine, opts.auditOpts, sinks, nil)
	if err != nil {
		return fmt.Errorf("failed to set up the audit: %w", err)
	}
	if err := auditor.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the audit: %w", err)
	}
	if err := report.RegisterReadAPI(mgr); err != nil {
		return fmt.Errorf("failed to set up the violations API: %w", err)
	}

	recorder := events.NewRecorder(mgr.GetClient(), mgr.GetAPIReader(),
		events.Options{Component: "trusted-delivery-admission"})
	enforcer := &admission.Enforcer{
		Engine:             engine,
		Namespaces:         mgr.GetClient(),
		Events:             recorder,
		Sink:               sinks,
		ExcludedNamespaces: opts.webhooks.Excluded(),
		OperatorUsername:   opts.webhooks.OperatorUsername(),
	}
	if err := enforcer.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the enforcement webhook: %w", err)
	}
	configReconciler := &webhookconfig.Reconciler{Certificates: certificates, Options: opts.webhooks}
	if err := configReconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the webhook configuration controller: %w", err)
	}

	webhookServer := mgr.GetWebhookServer()
	webhookServer.Register(pac.PolicyPath, &webhook.Admission{Handler: pac.NewPolicyValidator(mgr.GetScheme())})
	webhookServer.Register(pac.PolicyConfigPath,
		&webhook.Admission{Handler: pac.NewPolicyConfigValidator(mgr.GetScheme(), mgr.GetClient())})

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add the health check: %w", err)
	}
	readiness := webhookconfig.ReadyChecker(certificates, mgr.GetWebhookServer(), engine)
	if err := mgr.AddReadyzCheck("webhook", readiness); err != nil {
		return fmt.Errorf("failed to add the readiness check: %w", err)
	}

	log.Info("starting the manager", "namespace", opts.namespace, "leaderElection", opts.leaderElect,
		"webhookHost", opts.webhookHost, "webhookPort", opts.webhookPort)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("failed to run the manager: %w", err)
	}
	log.Info("manager stopped")
	return nil
}

// splitList splits a comma-separated flag value and drops empty entries.
func splitList(value string) []string {
	var items []string
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
