package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// Event fields of audit violations.
const (
	// EventReasonPolicyViolation is the reason of violation Events.
	EventReasonPolicyViolation = "PolicyViolation"
	// EventReportingController is the source and reporting controller.
	EventReportingController = "trusted-delivery-audit"
	// EventAction is the action of violation Events.
	EventAction = "Audit"
)

// Annotations of violation Events, so that tools can select them without
// parsing the message.
const (
	EventAnnotationPolicy   = "pac.weave.works/policy"
	EventAnnotationSeverity = "pac.weave.works/severity"
	EventAnnotationCategory = "pac.weave.works/category"
)

// Defaults of EventEmitter.
const (
	DefaultEventRate      = 10
	defaultEventQueueSize = 1000
)

// +kubebuilder:rbac:groups="",resources=events,verbs=get;create;patch

// EventEmitter records audit violations as core/v1 Events on the objects,
// one Event per object, policy and message. The Event's name is a hash of
// the three, so a violation found again, by a later scan, after a restart
// or on another replica, increments the count of the same Event instead of
// adding one. The manifest is never part of an Event.
//
// NOTE: the API server deletes Events after its --event-ttl (one hour by
// default), so a violation found again a day later starts a new Event with
// count 1.
type EventEmitter struct {
	// Client creates and patches the Events.
	Client client.Client
	// Reader reads existing Events. Use an uncached reader, because a
	// cache would hold every Event of the cluster.
	Reader client.Reader
	// Instance is the reporting instance, for example the Pod name.
	Instance string

	limiter *rate.Limiter
	queue   chan report.Record
}

// NewEventEmitter returns an emitter that writes at most perSecond Events a
// second. Violations beyond its bounded queue are dropped and counted in
// trusted_delivery_audit_events_dropped_total.
func NewEventEmitter(c client.Client, reader client.Reader, instance string, perSecond float64) *EventEmitter {
	if perSecond <= 0 {
		perSecond = DefaultEventRate
	}
	return &EventEmitter{
		Client:   c,
		Reader:   reader,
		Instance: instance,
		limiter:  rate.NewLimiter(rate.Limit(perSecond), int(max(perSecond, 1))),
		queue:    make(chan report.Record, defaultEventQueueSize),
	}
}

// Violation queues an Event for the record without blocking.
func (e *EventEmitter) Violation(_ context.Context, record *report.Record) {
	select {
	case e.queue <- *record:
	default:
		auditEventsDropped.Inc()
	}
}

// NeedLeaderElection is true: only the leader audits.
func (e *EventEmitter) NeedLeaderElection() bool {
	return true
}

// Start writes queued Events until ctx ends.
func (e *EventEmitter) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("audit-events")
	for {
		select {
		case <-ctx.Done():
			return nil
		case record := <-e.queue:
			if err := e.limiter.Wait(ctx); err != nil {
				return nil
			}
			if err := e.record(ctx, &record, time.Now()); err != nil {
				auditEventsDropped.Inc()
				log.Error(err, "failed to record a violation Event", "policy", record.PolicyID,
					"object", record.Object.Kind+"/"+objectName(record.Object.Namespace, record.Object.Name))
			}
		}
	}
}

// record creates the Event of the violation, or increments its count when
// it exists.
func (e *EventEmitter) record(ctx context.Context, r *report.Record, now time.Time) error {
	event := violationEvent(r, e.Instance, metav1.NewTime(now))
	err := e.Client.Create(ctx, event)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The Event exists: count this occurrence on it. The patch carries the
	// resourceVersion it read, so concurrent writers retry instead of
	// losing counts.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing := &corev1.Event{}
		if err := e.Reader.Get(ctx, client.ObjectKeyFromObject(event), existing); err != nil {
			return err
		}
		base := existing.DeepCopy()
		existing.Count++
		existing.LastTimestamp = event.LastTimestamp
		return e.Client.Patch(ctx, existing, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

// violationEvent returns the Event of a record, with count 1.
func violationEvent(r *report.Record, instance string, now metav1.Time) *corev1.Event {
	namespace := r.Object.Namespace
	if namespace == "" {
		// Events about cluster-scoped objects live in default, as kubectl
		// and client-go's recorder expect.
		namespace = metav1.NamespaceDefault
	}
	annotations := map[string]string{
		EventAnnotationPolicy:   r.PolicyID,
		EventAnnotationSeverity: r.Severity,
	}
	if r.Category != "" {
		annotations[EventAnnotationCategory] = r.Category
	}
	message := fmt.Sprintf("violates policy %s (%s severity): %s", r.PolicyID, r.Severity, r.Message())
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
		Reason:              EventReasonPolicyViolation,
		Message:             message,
		Type:                corev1.EventTypeWarning,
		Count:               1,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Source:              corev1.EventSource{Component: EventReportingController},
		Action:              EventAction,
		ReportingController: EventReportingController,
		ReportingInstance:   instance,
	}
}

// eventName returns "<object name>.<hash>", where the hash covers the
// object's UID, kind and name, the policy and the message. It stays within
// the 253 characters of a DNS subdomain.
func eventName(r *report.Record, message string) string {
	key := strings.Join([]string{r.Object.UID, r.Object.APIVersion, r.Object.Kind, r.Object.Name, r.PolicyID, message}, "\x00")
	sum := sha256.Sum256([]byte(key))
	suffix := "." + hex.EncodeToString(sum[:8])
	prefix := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			return c
		}
		if c >= 'A' && c <= 'Z' {
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

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
