// Package metrics declares the Prometheus metrics of admission enforcement
// and of violation Events. They are registered on controller-runtime's
// registry, so the manager's metrics endpoint serves them.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of AdmissionPolicyDecisions.
const (
	// ResultViolation: the object violates the policy.
	ResultViolation = "violation"
	// ResultPass: the object complies with the policy.
	ResultPass = "pass"
	// ResultError: the policy could not be evaluated (not compiled,
	// invalid parameters, timed out, runtime error). It never denies.
	ResultError = "error"
)

// Decisions of AdmissionRequests.
const (
	// DecisionAllowed: no policy was violated.
	DecisionAllowed = "allowed"
	// DecisionWarned: only policies that are not enforced were violated,
	// so the request was allowed with warnings.
	DecisionWarned = "warned"
	// DecisionDenied: an enforced policy was violated.
	DecisionDenied = "denied"
	// DecisionSkipped: the request was not evaluated, because it is a DELETE
	// or CONNECT, is for a subresource, is in an excluded namespace, or
	// comes from the operator's own ServiceAccount.
	DecisionSkipped = "skipped"
	// DecisionError: the request could not be evaluated, for example
	// because its object did not decode or the policies were not loaded
	// yet. The webhook's failurePolicy then decides.
	DecisionError = "error"
)

// Reasons of EventsDropped.
const (
	// DropReasonQueueFull: the Event queue was full.
	DropReasonQueueFull = "queue_full"
	// DropReasonWriteFailed: the API server rejected the Event or could not
	// be reached.
	DropReasonWriteFailed = "write_failed"
	// DropReasonShutdown: the manager stopped before the Event was written.
	DropReasonShutdown = "shutdown"
)

var (
	// AdmissionPolicyDecisions counts the outcome of each policy evaluated
	// in an admission request, by policy ID and result.
	AdmissionPolicyDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_admission_policy_decisions_total",
		Help: "Policies evaluated in admission requests, by policy and result: violation, pass, error.",
	}, []string{"policy", "result"})

	// AdmissionRequests counts admission requests by operation and decision.
	AdmissionRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_admission_requests_total",
		Help: "Admission requests of the enforcement webhook, by operation and decision: " +
			"allowed, warned, denied, skipped, error.",
	}, []string{"operation", "decision"})

	// AdmissionEvaluationDuration observes the time the Enforcer spends on
	// one evaluated admission request, from its start to the decision.
	AdmissionEvaluationDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "trusted_delivery_admission_evaluation_duration_seconds",
		Help: "Time to evaluate the policies of one admission request, without the HTTP and TLS overhead.",
		// 0.5 ms to about 4 s: a request evaluates in milliseconds, and the
		// policy deadline (--policy-timeout, 2 s by default) bounds it.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})

	// EventsRecorded counts violation Events written, by source.
	EventsRecorded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_violation_events_written_total",
		Help: "Violation Event writes (creates and count updates), by source: admission, audit.",
	}, []string{"source"})

	// EventsAggregated counts violations that were added to the count of an
	// Event instead of being written on their own.
	EventsAggregated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_violation_events_aggregated_total",
		Help: "Violations counted on an existing Event because the same object, policy and message " +
			"were seen within the aggregation window, by source.",
	}, []string{"source"})

	// EventsDropped counts violations whose Event was not written.
	EventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_violation_events_dropped_total",
		Help: "Violation Events not written, by source and reason: queue_full, write_failed, shutdown.",
	}, []string{"source", "reason"})
)

func init() {
	metrics.Registry.MustRegister(
		AdmissionPolicyDecisions,
		AdmissionRequests,
		AdmissionEvaluationDuration,
		EventsRecorded,
		EventsAggregated,
		EventsDropped,
	)
}
