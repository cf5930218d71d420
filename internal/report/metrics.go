package report

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Reasons of trusted_delivery_sink_dropped_records_total.
const (
	// dropReasonQueueFull: the sink's queue was full when the record came.
	dropReasonQueueFull = "queue_full"
	// dropReasonDeliveryFailed: every delivery attempt failed.
	dropReasonDeliveryFailed = "delivery_failed"
	// dropReasonRejected: the receiver rejected the record as invalid, so
	// retrying cannot help.
	dropReasonRejected = "rejected"
	// dropReasonShutdown: the manager stopped before the record was sent.
	dropReasonShutdown = "shutdown"
)

var (
	sinkDelivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_sink_delivered_records_total",
		Help: "Violation records delivered by each sink.",
	}, []string{"sink"})

	sinkDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_sink_dropped_records_total",
		Help: "Violation records a sink dropped, by reason: queue_full, delivery_failed, rejected, shutdown.",
	}, []string{"sink", "reason"})

	sinkRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_sink_retries_total",
		Help: "Delivery attempts that each sink retried after a failure.",
	}, []string{"sink"})

	reportWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_report_writes_total",
		Help: "Report and ClusterReport writes, by source (audit, admission) and result (success, error).",
	}, []string{"source", "result"})
)

func init() {
	metrics.Registry.MustRegister(sinkDelivered, sinkDropped, sinkRetries, reportWrites)
}
