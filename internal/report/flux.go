package report

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

const fluxSinkName = "flux"

// DefaultReportingController is the reportingController of the events the
// Flux sink sends.
const DefaultReportingController = "trusted-delivery"

// Reasons of the events the Flux sink sends.
const (
	// FluxReasonAuditViolation: an audit scan found the violation.
	FluxReasonAuditViolation = "AuditViolation"
	// FluxReasonAdmissionDenied: the violation denied an admission request.
	FluxReasonAdmissionDenied = "AdmissionDenied"
	// FluxReasonAdmissionWarning: the violation was returned as an admission
	// warning because the policy is not enforced.
	FluxReasonAdmissionWarning = "AdmissionWarning"
)

// Event severities of the Flux notification-controller.
const (
	fluxSeverityInfo  = "info"
	fluxSeverityError = "error"
)

// API versions of the Flux objects that events refer to.
const (
	kustomizationAPIVersion = "kustomize.toolkit.fluxcd.io/v1"
	helmReleaseAPIVersion   = "helm.toolkit.fluxcd.io/v2"
)

// FluxEvent is the event format that the Flux notification-controller
// receives on its events endpoint, as Flux controllers send it.
type FluxEvent struct {
	InvolvedObject corev1.ObjectReference `json:"involvedObject"`
	// Severity is info or error.
	Severity  string      `json:"severity"`
	Timestamp metav1.Time `json:"timestamp"`
	Message   string      `json:"message"`
	Reason    string      `json:"reason"`
	// Metadata keys carry the involved object's API group as prefix, as the
	// Flux controllers write them.
	Metadata            map[string]string `json:"metadata,omitempty"`
	ReportingController string            `json:"reportingController"`
	ReportingInstance   string            `json:"reportingInstance,omitempty"`
}

// FluxConfig configures the Flux notification sink.
type FluxConfig struct {
	// Address is the notification-controller events URL, for example
	// http://notification-controller.flux-system.svc.cluster.local./
	Address string
	// ReportingController names the sender. Empty means
	// DefaultReportingController.
	ReportingController string
	// ReportingInstance names the replica, for example the Pod name.
	ReportingInstance string
	// QueueSize is the maximum number of records waiting to be sent.
	QueueSize int
	// FlushInterval is the maximum time a record waits in the queue. Zero
	// means one second.
	FlushInterval time.Duration
	// Timeout bounds one POST. Zero means 10s.
	Timeout time.Duration
	// MaxAttempts is how often an event is tried when the receiver fails
	// or returns 429 or 5xx. Zero means 3.
	MaxAttempts int
	// RetryBackoff is the first wait between attempts. Zero means 1s.
	RetryBackoff time.Duration
	// HTTPClient replaces the default client. Tests use it.
	HTTPClient *http.Client
}

// FluxSink sends each violation on an object that Flux applied as an event
// about the Kustomization or HelmRelease that applied it, so that Flux
// Alerts route it to chat, paging or Git commit status. Violations on other
// objects are not sent.
type FluxSink struct {
	cfg   FluxConfig
	queue *queue
}

// NewFluxSink validates cfg and returns the sink.
func NewFluxSink(cfg FluxConfig) (*FluxSink, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid --flux-notification-address %q: use an http or https URL", cfg.Address)
	}
	if cfg.ReportingController == "" {
		cfg.ReportingController = DefaultReportingController
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &FluxSink{cfg: cfg, queue: newQueue(fluxSinkName, cfg.QueueSize, 0, cmp.Or(cfg.FlushInterval, time.Second))}, nil
}

// Send queues the records that have a Flux owner, without blocking.
func (s *FluxSink) Send(records []Record) {
	var owned []Record
	for i := range records {
		if records[i].FluxOwner != nil {
			owned = append(owned, records[i])
		}
	}
	s.queue.offer(owned)
}

// NeedLeaderElection is false: every replica sends the admission records
// it handles.
func (s *FluxSink) NeedLeaderElection() bool {
	return false
}

// Start posts queued events until ctx ends.
func (s *FluxSink) Start(ctx context.Context) error {
	log := sinkLogger(ctx, fluxSinkName).WithValues("address", s.cfg.Address)
	log.Info("sending violations to the Flux notification-controller")
	s.queue.run(ctx, func(ctx context.Context, batch []Record) {
		for i := range batch {
			s.deliver(ctx, log, &batch[i])
		}
	})
	return nil
}

func (s *FluxSink) deliver(ctx context.Context, log logr.Logger, r *Record) {
	event := NewFluxEvent(r, s.cfg.ReportingController, s.cfg.ReportingInstance)
	body, err := json.Marshal(event)
	if err != nil {
		log.Error(err, "failed to encode a Flux event", "policy", r.PolicyID)
		sinkDropped.WithLabelValues(fluxSinkName, dropReasonRejected).Inc()
		return
	}
	for attempt := 1; ; attempt++ {
		retryable, err := s.post(ctx, body)
		if err == nil {
			sinkDelivered.WithLabelValues(fluxSinkName).Inc()
			return
		}
		if !retryable || attempt >= s.cfg.MaxAttempts {
			log.Error(err, "dropping a Flux event", "policy", r.PolicyID,
				"involvedObject", event.InvolvedObject.Kind+"/"+objectName(event.InvolvedObject.Namespace, event.InvolvedObject.Name),
				"attempts", attempt)
			reason := dropReasonDeliveryFailed
			if !retryable {
				reason = dropReasonRejected
			}
			sinkDropped.WithLabelValues(fluxSinkName, reason).Inc()
			return
		}
		sinkRetries.WithLabelValues(fluxSinkName).Inc()
		if !waitOrDone(ctx, backoff(attempt, s.cfg.RetryBackoff, 30*time.Second)) {
			sinkDropped.WithLabelValues(fluxSinkName, dropReasonShutdown).Inc()
			return
		}
	}
}

// post sends one event and reports whether a failure is worth retrying.
func (s *FluxSink) post(ctx context.Context, body []byte) (retryable bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Address, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request to %s: %w", s.cfg.Address, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, fmt.Errorf("post event to %s: %w", s.cfg.Address, err)
	}
	defer drainClose(res.Body)
	if res.StatusCode < 300 {
		return false, nil
	}
	text, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	err = fmt.Errorf("post event to %s: status %s: %s", s.cfg.Address, res.Status, strings.TrimSpace(string(text)))
	return retryableStatus(res.StatusCode), err
}

// NewFluxEvent returns the event for a record whose FluxOwner is set. The
// severity is error when the violation denied a request or the policy's
// severity is high, and info otherwise.
func NewFluxEvent(r *Record, controller, instance string) FluxEvent {
	owner := r.FluxOwner
	if owner == nil {
		owner = &FluxOwner{}
	}
	apiVersion := kustomizationAPIVersion
	if owner.Kind == "HelmRelease" {
		apiVersion = helmReleaseAPIVersion
	}
	namespace := owner.Namespace
	if namespace == "" {
		namespace = r.Object.Namespace
	}
	group, _, _ := strings.Cut(apiVersion, "/")

	reason, severity := FluxReasonAuditViolation, fluxSeverityInfo
	if r.Admission != nil {
		reason = FluxReasonAdmissionWarning
		if r.Admission.Denied {
			reason, severity = FluxReasonAdmissionDenied, fluxSeverityError
		}
	}
	if r.Severity == pacv2beta3.SeverityHigh {
		severity = fluxSeverityError
	}

	metadata := map[string]string{
		group + "/policy":   r.PolicyID,
		group + "/severity": r.Severity,
		group + "/source":   r.Source,
		group + "/object":   r.Object.Kind + "/" + objectName(r.Object.Namespace, r.Object.Name),
	}
	if r.Category != "" {
		metadata[group+"/category"] = r.Category
	}
	return FluxEvent{
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion,
			Kind:       owner.Kind,
			Namespace:  namespace,
			Name:       owner.Name,
		},
		Severity:            severity,
		Timestamp:           metav1.NewTime(r.Time.UTC().Truncate(time.Second)),
		Message:             violationMessage(r),
		Reason:              reason,
		Metadata:            metadata,
		ReportingController: controller,
		ReportingInstance:   instance,
	}
}

// violationMessage describes a record in one line: the object, the policy
// and the occurrence messages.
func violationMessage(r *Record) string {
	return fmt.Sprintf("%s %s violates policy %s (%s severity): %s",
		r.Object.Kind, objectName(r.Object.Namespace, r.Object.Name), policyLabel(r), r.Severity, r.Message())
}

func policyLabel(r *Record) string {
	if r.PolicyName == "" || r.PolicyName == r.PolicyID {
		return r.PolicyID
	}
	return fmt.Sprintf("%s %q", r.PolicyID, r.PolicyName)
}
