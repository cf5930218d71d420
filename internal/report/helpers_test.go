package report

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// testTime is the time of every test record.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func testRecord(policyID, namespace, name string, messages ...string) Record {
	r := Record{
		Source:     SourceAudit,
		Time:       testTime,
		PolicyID:   policyID,
		PolicyName: "Name of " + policyID,
		Severity:   "high",
		Category:   "weave.categories.pod-security",
		Enforced:   true,
		Object: policy.ObjectRef{
			APIVersion: "apps/v1",
			Kind:       "Deployment",
			Namespace:  namespace,
			Name:       name,
			UID:        "uid-" + name,
		},
		Workspace: "team-a",
	}
	for _, m := range messages {
		r.Occurrences = append(r.Occurrences, policy.Occurrence{Message: m, ViolatingKey: "spec.replicas", RecommendedValue: 3})
	}
	return r
}

// startSink runs a sink's Start until the test ends and waits for it to
// return.
func startSink(t *testing.T, start func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func droppedCount(sink, reason string) float64 {
	return counterValue(sinkDropped.WithLabelValues(sink, reason))
}

func counterValue(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func deploymentObject(namespace, name string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("apps/v1")
	obj.SetKind("Deployment")
	obj.SetNamespace(namespace)
	obj.SetName(name)
	return obj
}
