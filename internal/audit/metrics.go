package audit

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	auditRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_audit_runs_total",
		Help: "Audit scans, by result: success, partial (some API groups or resources could not be read), error.",
	}, []string{"result"})

	auditDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trusted_delivery_audit_duration_seconds",
		Help:    "Duration of audit scans, from discovery to the last status write.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})

	auditLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trusted_delivery_audit_last_success_timestamp_seconds",
		Help: "Unix time at which the last audit scan that wrote its results ended.",
	})

	auditObjects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_audit_objects_total",
		Help: "Objects evaluated by audit scans, by API group and kind.",
	}, []string{"group", "kind"})

	auditSkippedOwned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trusted_delivery_audit_skipped_owned_objects_total",
		Help: "Objects that audit scans skipped because they have an ownerReference (see --audit-include-owned).",
	})

	auditViolations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trusted_delivery_audit_violations",
		Help: "Violations found by the last audit scan, by policy and severity.",
	}, []string{"policy", "severity"})

	auditDiscoveryFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_audit_discovery_failures_total",
		Help: "API group versions that discovery could not read during an audit scan; their kinds were not audited.",
	}, []string{"group_version"})

	auditListFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trusted_delivery_audit_list_failures_total",
		Help: "Resources that an audit scan could not list, for example because RBAC forbids it.",
	}, []string{"group_version", "resource"})
)

func init() {
	metrics.Registry.MustRegister(
		auditRuns,
		auditDuration,
		auditLastSuccess,
		auditObjects,
		auditSkippedOwned,
		auditViolations,
		auditDiscoveryFailures,
		auditListFailures,
	)
}
