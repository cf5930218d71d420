package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

var policyCompileErrorsDesc = prometheus.NewDesc(
	"trusted_delivery_policy_compile_errors",
	"1 for each policy, active in some mode, whose code does not compile, by policy and reason "+
		"(CompileError, MissingViolationRule). Such a policy reports an error for every object and never denies.",
	[]string{"policy", "reason"}, nil,
)

// policyCollector reports the compile errors of the engine's policies at
// scrape time, so the gauge is never older than the engine.
type policyCollector struct {
	engine atomic.Pointer[policy.Engine]
}

var (
	collector         = &policyCollector{}
	registerCollector sync.Once
)

// ObservePolicies makes the metrics endpoint report the compile errors of
// the engine's policies. A later call replaces the engine, which tests that
// build several engines in one process need.
func ObservePolicies(engine *policy.Engine) {
	collector.engine.Store(engine)
	registerCollector.Do(func() {
		metrics.Registry.MustRegister(collector)
	})
}

// Describe implements prometheus.Collector.
func (c *policyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- policyCompileErrorsDesc
}

// Collect implements prometheus.Collector.
func (c *policyCollector) Collect(ch chan<- prometheus.Metric) {
	engine := c.engine.Load()
	if engine == nil {
		return
	}
	seen := map[string]bool{}
	for _, mode := range policy.Modes {
		for _, p := range engine.ActivePolicies(mode) {
			id := policy.PolicyID(&p)
			if seen[id] {
				continue
			}
			seen[id] = true
			status, ok := engine.Status(id)
			if !ok || !isCompileError(status.Reason) {
				continue
			}
			ch <- prometheus.MustNewConstMetric(policyCompileErrorsDesc, prometheus.GaugeValue, 1, id, status.Reason)
		}
	}
}

func isCompileError(reason string) bool {
	return reason == pacv2beta3.PolicyCompileErrorReason || reason == pacv2beta3.PolicyMissingViolationRuleReason
}
