// Package audit runs audit scans on the leader replica: at start-up, every
// interval and shortly after policies change. A scan lists the objects that
// the audit-mode policies target straight from the API server, page by
// page, and evaluates them with the policy engine in a bounded worker pool.
// It records the results in OpenReports reports, the status of Policies and
// Workspaces, Events, metrics and the configured sinks.
package audit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tdevents "github.com/trusted-delivery/trusted-delivery/internal/events"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// FieldManager is the server-side apply field manager of everything the
// audit writes: reports, Policy status.violationCount and lastAuditTime,
// and the Workspace Compliant condition and status.violations. The
// reconcilers of those kinds use kube.FieldManager, so neither removes the
// other's fields.
const FieldManager = kube.FieldManager + "-audit"

// Defaults of Options.
const (
	DefaultInterval  = 24 * time.Hour
	DefaultDebounce  = 30 * time.Second
	DefaultPageSize  = 500
	DefaultWorkers   = 2
	DefaultEventRate = 10
)

// EventComponent is the source and reporting controller of the violation
// Events that audit scans record.
const EventComponent = "trusted-delivery-audit"

// Options configures the audit.
type Options struct {
	// Interval is the time between the end of one scan and the start of
	// the next.
	Interval time.Duration
	// Debounce is how long a scan waits after a Policy, PolicySet or
	// PolicyConfig changed, so that a burst of changes yields one scan.
	Debounce time.Duration
	// PageSize is the number of objects requested per list call.
	PageSize int64
	// Workers is the number of objects evaluated at once.
	Workers int
	// IncludeOwned audits objects that have an ownerReference, such as the
	// Pods of a ReplicaSet. By default only their owners are audited.
	IncludeOwned bool
	// ExcludedResources are never listed, as "resource" for the core group
	// or "resource.group". Nil means DefaultExcludedResources.
	ExcludedResources []string
	// MaxResults caps the results listed in each report.
	MaxResults int
	// EventRate is the maximum number of violation Events written per
	// second when New builds the Event recorder. Zero writes no Events.
	EventRate float64
}

// Validate returns the problems of flag values that the audit cannot run
// with. Zero values are left to the defaults.
func (o *Options) Validate() error {
	var errs []error
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--audit-interval", o.Interval}, {"--audit-debounce", o.Debounce}} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %s: use a positive duration", d.flag, d.value))
		}
	}
	if o.PageSize < 0 {
		errs = append(errs, fmt.Errorf("invalid --audit-page-size %d: use a positive number", o.PageSize))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("invalid --audit-workers %d: use a positive number", o.Workers))
	}
	if o.MaxResults < 0 {
		errs = append(errs, fmt.Errorf("invalid --report-max-results %d: use a positive number", o.MaxResults))
	}
	if o.EventRate < 0 {
		errs = append(errs, fmt.Errorf("invalid --audit-event-rate %g: use 0 to write no Events or a positive rate", o.EventRate))
	}
	return errors.Join(errs...)
}

// BindFlags registers the audit flags on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Interval, "audit-interval", DefaultInterval,
		"Time between the end of one audit scan and the start of the next, for example 24h or 30m.")
	fs.DurationVar(&o.Debounce, "audit-debounce", DefaultDebounce,
		"Delay of the audit scan that a change of a Policy, PolicySet or PolicyConfig triggers; "+
			"changes within the delay share one scan.")
	fs.Int64Var(&o.PageSize, "audit-page-size", DefaultPageSize,
		"Number of objects requested per list call of an audit scan.")
	fs.IntVar(&o.Workers, "audit-workers", DefaultWorkers,
		"Number of objects an audit scan evaluates at once.")
	fs.BoolVar(&o.IncludeOwned, "audit-include-owned", false,
		"Also audit objects that have an ownerReference, such as the Pods of a ReplicaSet; "+
			"by default only their owners are audited.")
	fs.Func("audit-exclude-resources",
		"Comma-separated resources that audit scans never list, as resource for the core group or resource.group "+
			"(default "+strings.Join(DefaultExcludedResources, ",")+"); an empty value lists every resource.",
		func(value string) error {
			o.ExcludedResources = []string{}
			for part := range strings.SplitSeq(value, ",") {
				if part = strings.TrimSpace(part); part != "" {
					o.ExcludedResources = append(o.ExcludedResources, part)
				}
			}
			return nil
		})
	fs.Float64Var(&o.EventRate, "audit-event-rate", DefaultEventRate,
		"Maximum number of violation Events per second that audit scans write, one Event per object, policy and "+
			"message with a count; violations beyond a queue of "+strconv.Itoa(tdevents.DefaultQueueSize)+
			" are dropped. 0 writes no Events.")
	fs.IntVar(&o.MaxResults, "report-max-results", report.DefaultMaxResults,
		"Maximum number of results listed in each audit Report and ClusterReport; the summary counts all of them.")
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.ExcludedResources == nil {
		o.ExcludedResources = DefaultExcludedResources
	}
	if o.MaxResults <= 0 {
		o.MaxResults = report.DefaultMaxResults
	}
}

// ViolationEvents emits an Event for a violation on the object it is about.
// Implementations deduplicate: the same object, policy and message across
// scans is one Event with a count.
type ViolationEvents interface {
	Violation(ctx context.Context, record *report.Record)
}

// The audit lists every kind that audit-mode policies target, and a
// policy without kinds targets every kind, so it needs list on all
// resources. It never reads objects one by one or watches them.
// +kubebuilder:rbac:groups=*,resources=*,verbs=list
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies;policysets;policyconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=pac.weave.works,resources=policies/status,verbs=get;patch
// +kubebuilder:rbac:groups=tenancy.weave.works,resources=workspaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=tenancy.weave.works,resources=workspaces/status,verbs=get;patch

// Auditor is a manager runnable that runs audit scans on the leader.
type Auditor struct {
	// Engine evaluates the objects. It must be the engine the policy
	// reconcilers keep loaded.
	Engine *policy.Engine
	// Client reads Policies and Workspaces from the cache and applies their
	// status.
	Client client.Client
	// APIReader lists Namespaces without the cache.
	APIReader client.Reader
	// Dynamic lists the audited objects from the API server.
	Dynamic dynamic.Interface
	// Discovery resolves the audited kinds to resources at each scan.
	Discovery discovery.DiscoveryInterfaceWithContext
	// Reports writes the OpenReports reports.
	Reports *report.ReportWriter
	// Sink receives a record for every violation. Nil sends none.
	Sink report.Sink
	// Events emits Events for violations. Nil emits none.
	Events ViolationEvents
	// WaitForCacheSync blocks until the manager's cache has synced. Nil
	// does not wait.
	WaitForCacheSync func(ctx context.Context) bool

	Options Options

	triggerOnce sync.Once
	triggered   chan struct{}
}

// New returns an Auditor that uses the manager's clients and writes reports
// under FieldManager. When events is nil and opts.EventRate is positive, it
// records violation Events with an events.Recorder that SetupWithManager
// adds to the manager.
func New(mgr ctrl.Manager, engine *policy.Engine, opts Options, sink report.Sink, events ViolationEvents) (*Auditor, error) {
	if err := report.RegisterScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("create the dynamic client of the audit: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("create the discovery client of the audit: %w", err)
	}
	a := &Auditor{
		Engine:    engine,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Dynamic:   dyn,
		Discovery: disc,
		Reports: &report.ReportWriter{
			Client:       mgr.GetClient(),
			Reader:       mgr.GetAPIReader(),
			FieldManager: FieldManager,
		},
		Sink:             sink,
		Events:           events,
		WaitForCacheSync: mgr.GetCache().WaitForCacheSync,
		Options:          opts,
	}
	a.Options.defaults()
	if events == nil && opts.EventRate > 0 {
		a.Events = tdevents.NewRecorder(mgr.GetClient(), mgr.GetAPIReader(),
			tdevents.Options{Component: EventComponent, Rate: opts.EventRate})
	}
	return a, nil
}

// SetupWithManager adds the Auditor to the manager and triggers a scan,
// after the debounce delay, when a Policy, PolicySet or PolicyConfig is
// created, deleted or changes its spec.
func (a *Auditor) SetupWithManager(mgr ctrl.Manager) error {
	a.Options.defaults()
	for _, obj := range []client.Object{&pacv2beta3.Policy{}, &pacv2beta2.PolicySet{}, &pacv2beta3.PolicyConfig{}} {
		informer, err := mgr.GetCache().GetInformer(context.Background(), obj)
		if err != nil {
			return fmt.Errorf("watch %T for the audit: %w", obj, err)
		}
		if _, err := informer.AddEventHandler(a.triggerHandler()); err != nil {
			return fmt.Errorf("watch %T for the audit: %w", obj, err)
		}
	}
	if runnable, ok := a.Events.(manager.Runnable); ok {
		if err := mgr.Add(runnable); err != nil {
			return fmt.Errorf("add the audit Event recorder to the manager: %w", err)
		}
	}
	if err := mgr.Add(a); err != nil {
		return fmt.Errorf("add the audit to the manager: %w", err)
	}
	return nil
}

// triggerHandler triggers a scan on every change of spec after the initial
// list, which the start-up scan covers.
func (a *Auditor) triggerHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, isInInitialList bool) {
			if !isInInitialList {
				a.Trigger()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			oldMeta, okOld := oldObj.(client.Object)
			newMeta, okNew := newObj.(client.Object)
			if !okOld || !okNew || oldMeta.GetGeneration() != newMeta.GetGeneration() {
				a.Trigger()
			}
		},
		DeleteFunc: func(any) { a.Trigger() },
	}
}

// Trigger requests a scan after the debounce delay. It does not block,
// because a request made while another is pending is merged into it.
func (a *Auditor) Trigger() {
	select {
	case a.triggerChannel() <- struct{}{}:
	default:
	}
}

func (a *Auditor) triggerChannel() chan struct{} {
	a.triggerOnce.Do(func() { a.triggered = make(chan struct{}, 1) })
	return a.triggered
}

// NeedLeaderElection is true: only the leader audits.
func (a *Auditor) NeedLeaderElection() bool {
	return true
}

// Start waits for the cache and the policy engine, scans, and then scans
// again every interval and after triggers until ctx ends. A failed scan is
// logged and retried at the next interval or trigger.
func (a *Auditor) Start(ctx context.Context) error {
	a.Options.defaults()
	log := ctrl.LoggerFrom(ctx).WithName("audit")
	ctx = ctrl.LoggerInto(ctx, log)
	triggered := a.triggerChannel()

	if a.WaitForCacheSync != nil && !a.WaitForCacheSync(ctx) {
		return nil
	}
	if err := a.waitForEngine(ctx); err != nil {
		return nil
	}
	log.Info("starting audit scans", "interval", a.Options.Interval, "debounce", a.Options.Debounce,
		"workers", a.Options.Workers, "pageSize", a.Options.PageSize, "includeOwned", a.Options.IncludeOwned)

	next := time.NewTimer(0)
	defer next.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping audit scans")
			return nil
		case <-triggered:
			// The first change of a burst starts the delay. Later ones
			// join it, so that a scan runs at most Debounce after a change.
			if debounce == nil {
				debounce = time.After(a.Options.Debounce)
			}
			continue
		case <-debounce:
			debounce = nil
			log.Info("audit scan triggered by a policy change")
		case <-next.C:
		}
		a.run(ctx, log)
		next.Reset(a.Options.Interval)
	}
}

// waitForEngine waits until the policy reconcilers loaded every policy, so
// that the first scan does not report a partial policy set.
func (a *Auditor) waitForEngine(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		return a.Engine.Synced(), nil
	})
}

func (a *Auditor) run(ctx context.Context, log logr.Logger) {
	start := time.Now()
	results, err := a.Run(ctx)
	duration := time.Since(start)
	auditDuration.Observe(duration.Seconds())
	switch {
	case ctx.Err() != nil:
		log.Info("audit scan cancelled", "duration", duration)
	case err != nil:
		auditRuns.WithLabelValues("error").Inc()
		log.Error(err, "audit scan failed", "duration", duration)
	default:
		outcome := "success"
		if len(results.Failures()) > 0 {
			outcome = "partial"
		}
		auditRuns.WithLabelValues(outcome).Inc()
		auditLastSuccess.SetToCurrentTime()
		log.Info("audit scan finished", "duration", duration, "objects", results.Objects(),
			"violations", totalViolations(results), "scanFailures", len(results.Failures()))
	}
}

func totalViolations(results *report.AuditResults) int64 {
	var total int64
	for _, c := range results.PolicyCounts() {
		total += c.Violations
	}
	return total
}

// errCancelled is returned by Run when ctx ended during the scan. Nothing
// was written.
var errCancelled = errors.New("audit scan cancelled")
