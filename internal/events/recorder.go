// Package events records policy violations as core/v1 Events on the
// violating objects. A Recorder never blocks its caller: violations go
// through a bounded queue to one writer goroutine with a rate limit, and
// repeats of the same violation are aggregated into the count of one Event.
// The admission webhook uses it, and its Violation method matches the
// audit's ViolationEvents interface so that the audit can use it too.
package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/internal/metrics"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// ReasonPolicyViolation is the reason of every violation Event.
const ReasonPolicyViolation = "PolicyViolation"

// Annotations of violation Events, so that tools can select them without
// parsing the message. The audit's Events use the same keys.
const (
	AnnotationPolicy   = "pac.weave.works/policy"
	AnnotationSeverity = "pac.weave.works/severity"
	AnnotationCategory = "pac.weave.works/category"
)

// Defaults of Options.
const (
	DefaultQueueSize     = 1000
	DefaultRate          = 10
	DefaultWindow        = 10 * time.Minute
	DefaultFlushInterval = 30 * time.Second
	DefaultMaxEntries    = 10000
)

// maxMessageLength bounds the Event message. events.k8s.io/v1 limits the
// note of an Event to 1 KiB, and kubectl shows the message on one line.
const maxMessageLength = 1024

// Options configures a Recorder. Zero values take the defaults.
type Options struct {
	// Component is the Event source and reporting controller, for example
	// trusted-delivery-admission.
	Component string
	// Instance is the reporting instance. Empty means $POD_NAME, or the
	// host name when that is unset.
	Instance string
	// QueueSize is the number of distinct violations waiting to be written;
	// more are dropped and counted in
	// trusted_delivery_violation_events_dropped_total.
	QueueSize int
	// Rate is the maximum number of Event writes per second.
	Rate float64
	// Window is how long the Recorder remembers a violation after it last
	// saw it. A repeat within the window is added to the count of its Event
	// at the next flush instead of being written on its own.
	Window time.Duration
	// FlushInterval is how often the counts of repeated violations are
	// written.
	FlushInterval time.Duration
	// MaxEntries bounds the violations remembered at once; a new violation
	// beyond it is dropped until old ones expire.
	MaxEntries int
}

func (o *Options) defaults() {
	if o.Component == "" {
		o.Component = "trusted-delivery"
	}
	if o.Instance == "" {
		o.Instance = os.Getenv("POD_NAME")
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
}

// +kubebuilder:rbac:groups="",resources=events,verbs=get;create;patch

// Recorder writes violation Events. Create it with NewRecorder and run it
// with the manager (it is a manager.Runnable that runs on every replica).
type Recorder struct {
	client client.Client
	reader client.Reader
	opts   Options

	limiter *rate.Limiter
	queue   chan string

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is a violation that the Recorder remembers.
type entry struct {
	event    *corev1.Event
	source   string
	lastSeen time.Time
	// pending is the number of occurrences not written yet.
	pending int32
	// queued is true while the key waits in the queue.
	queued bool
}

// NewRecorder returns a Recorder that creates and patches Events with c and
// reads existing Events with reader. Use an uncached reader such as the
// manager's APIReader, because a cache would hold every Event of the cluster.
func NewRecorder(c client.Client, reader client.Reader, opts Options) *Recorder {
	opts.defaults()
	return &Recorder{
		client:  c,
		reader:  reader,
		opts:    opts,
		limiter: rate.NewLimiter(rate.Limit(opts.Rate), int(max(opts.Rate, 1))),
		queue:   make(chan string, opts.QueueSize),
		entries: map[string]*entry{},
	}
}

// Violation queues the Event of the record and returns at once. A record
// equal to a remembered one (same object, policy and message) only
// increments that Event's count.
func (r *Recorder) Violation(_ context.Context, record *report.Record) {
	if record == nil {
		return
	}
	event := violationEvent(record, r.opts.Component, r.opts.Instance, metav1.Now())
	key := event.Namespace + "/" + event.Name
	now := time.Now()

	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok {
		e.pending++
		e.lastSeen = now
		metrics.EventsAggregated.WithLabelValues(record.Source).Inc()
		return
	}
	if len(r.entries) >= r.opts.MaxEntries {
		r.expireLocked(now)
	}
	if len(r.entries) >= r.opts.MaxEntries {
		metrics.EventsDropped.WithLabelValues(record.Source, metrics.DropReasonQueueFull).Inc()
		return
	}
	select {
	case r.queue <- key:
		r.entries[key] = &entry{event: event, source: record.Source, lastSeen: now, pending: 1, queued: true}
	default:
		metrics.EventsDropped.WithLabelValues(record.Source, metrics.DropReasonQueueFull).Inc()
	}
}

// NeedLeaderElection is false: every replica records the violations of
// the requests it handles.
func (r *Recorder) NeedLeaderElection() bool {
	return false
}

// Start writes queued Events and flushes aggregated counts until ctx ends.
func (r *Recorder) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("violation-events").WithValues("component", r.opts.Component)
	ticker := time.NewTicker(r.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.dropQueued()
			return nil
		case <-ticker.C:
			r.flush(time.Now())
		case key := <-r.queue:
			if err := r.limiter.Wait(ctx); err != nil {
				r.dropQueued()
				return nil
			}
			r.write(ctx, log, key)
		}
	}
}

// write creates the Event of key, or adds the pending occurrences to its
// count when it exists.
func (r *Recorder) write(ctx context.Context, log logr.Logger, key string) {
	r.mu.Lock()
	e, ok := r.entries[key]
	if !ok {
		r.mu.Unlock()
		return
	}
	count := e.pending
	e.pending = 0
	e.queued = false
	event := e.event.DeepCopy()
	source := e.source
	r.mu.Unlock()
	if count == 0 {
		return
	}

	now := metav1.Now()
	event.Count = count
	event.FirstTimestamp, event.LastTimestamp = now, now
	err := r.client.Create(ctx, event)
	if apierrors.IsAlreadyExists(err) {
		err = r.addCount(ctx, event, count, now)
	}
	if err != nil {
		metrics.EventsDropped.WithLabelValues(source, metrics.DropReasonWriteFailed).Add(float64(count))
		involved := &event.InvolvedObject
		log.Error(err, "failed to write a violation Event", "event", event.Namespace+"/"+event.Name,
			"policy", event.Annotations[AnnotationPolicy],
			"object", involved.Kind+" "+involved.Namespace+"/"+involved.Name)
		return
	}
	metrics.EventsRecorded.WithLabelValues(source).Inc()
}

// addCount adds count to the existing Event. The patch carries the
// resourceVersion it read, so concurrent writers on other replicas retry
// instead of losing counts.
func (r *Recorder) addCount(ctx context.Context, event *corev1.Event, count int32, now metav1.Time) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing := &corev1.Event{}
		if err := r.reader.Get(ctx, client.ObjectKeyFromObject(event), existing); err != nil {
			return fmt.Errorf("get Event %s/%s: %w", event.Namespace, event.Name, err)
		}
		base := existing.DeepCopy()
		existing.Count = max(existing.Count, 1) + count
		existing.LastTimestamp = now
		if err := r.client.Patch(ctx, existing, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patch count of Event %s/%s: %w", event.Namespace, event.Name, err)
		}
		return nil
	})
}

// flush queues the remembered violations that repeated since their last
// write and removes those not seen within the window.
func (r *Recorder) flush(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, e := range r.entries {
		if e.queued || e.pending == 0 {
			continue
		}
		select {
		case r.queue <- key:
			e.queued = true
		default:
			// The queue is full: the count stays pending until the next
			// flush.
		}
	}
	r.expireLocked(now)
}

// expireLocked removes the violations with nothing left to write that were
// last seen before the window. r.mu must be held.
func (r *Recorder) expireLocked(now time.Time) {
	for key, e := range r.entries {
		if !e.queued && e.pending == 0 && now.Sub(e.lastSeen) > r.opts.Window {
			delete(r.entries, key)
		}
	}
}

// dropQueued counts the occurrences that were not written because the
// manager stopped.
func (r *Recorder) dropQueued() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.pending > 0 {
			metrics.EventsDropped.WithLabelValues(e.source, metrics.DropReasonShutdown).Add(float64(e.pending))
		}
	}
}

// violationEvent returns the Event of a record, without count and
// timestamps. It carries references and messages, never the manifest.
func violationEvent(r *report.Record, component, instance string, now metav1.Time) *corev1.Event {
	namespace := r.Object.Namespace
	if namespace == "" {
		// Events about cluster-scoped objects live in default, as kubectl
		// and client-go's recorder expect.
		namespace = metav1.NamespaceDefault
	}
	annotations := map[string]string{
		AnnotationPolicy:   r.PolicyID,
		AnnotationSeverity: r.Severity,
	}
	if r.Category != "" {
		annotations[AnnotationCategory] = r.Category
	}
	message := Message(r)
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        eventName(r, message),
			Annotations: annotations,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: r.Object.APIVersion,
			Kind:       r.Object.Kind,
			Namespace:  r.Object.Namespace,
			Name:       r.Object.Name,
			UID:        types.UID(r.Object.UID),
		},
		Reason:              ReasonPolicyViolation,
		Message:             message,
		Type:                corev1.EventTypeWarning,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Source:              corev1.EventSource{Component: component},
		Action:              action(r),
		ReportingController: component,
		ReportingInstance:   instance,
	}
}

// Message returns the Event message of a record: what happened, the policy
// and its severity, and the occurrence messages, within 1 KiB.
func Message(r *report.Record) string {
	var prefix string
	switch {
	case r.Admission != nil && r.Admission.Denied:
		prefix = fmt.Sprintf("%s denied: violates policy %s (%s severity)", r.Admission.Operation, r.PolicyID, r.Severity)
	case r.Admission != nil:
		prefix = fmt.Sprintf("%s allowed with a warning: violates policy %s (%s severity), which is not enforced",
			r.Admission.Operation, r.PolicyID, r.Severity)
	default:
		prefix = fmt.Sprintf("violates policy %s (%s severity)", r.PolicyID, r.Severity)
	}
	return truncate(prefix+": "+r.Message(), maxMessageLength)
}

func action(r *report.Record) string {
	if r.Source == report.SourceAdmission {
		return "Admission"
	}
	return "Audit"
}

// eventName returns "<object name>.<hash>". The hash covers the object's
// group, kind, namespace and name, the policy and the message, so the same
// violation always maps to the same Event. It leaves out the UID, because
// each retry of a denied create carries a new one. The name stays within the
// 253 characters of a DNS subdomain.
func eventName(r *report.Record, message string) string {
	group := schema.FromAPIVersionAndKind(r.Object.APIVersion, r.Object.Kind).Group
	key := strings.Join([]string{group, r.Object.Kind, r.Object.Namespace, r.Object.Name, r.PolicyID, message}, "\x00")
	sum := sha256.Sum256([]byte(key))
	suffix := "." + hex.EncodeToString(sum[:8])
	prefix := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		}
		// Names such as system:controller:x are valid for some kinds but
		// not for Events.
		return '-'
	}, r.Object.Name)
	if limit := validation.DNS1123SubdomainMaxLength - len(suffix); len(prefix) > limit {
		prefix = prefix[:limit]
	}
	prefix = strings.Trim(prefix, ".-")
	if prefix == "" {
		return suffix[1:]
	}
	return prefix + suffix
}

// truncate shortens s to at most limit bytes without splitting a UTF-8
// sequence and marks the cut with an ellipsis.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + ellipsis
}
