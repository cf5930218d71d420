package events

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/trusted-delivery/trusted-delivery/internal/metrics"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

func record(name, message string) *report.Record {
	return &report.Record{
		Source:      report.SourceAdmission,
		PolicyID:    "td.replicas",
		Severity:    "high",
		Category:    "reliability",
		Object:      policy.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: name, UID: "uid-1"},
		Occurrences: []policy.Occurrence{{Message: message}},
		Admission:   &report.AdmissionDetails{Operation: "CREATE", User: "alice", Denied: true},
	}
}

func counter(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func TestMessage(t *testing.T) {
	denied := record("web", "too many replicas")
	warned := record("web", "too many replicas")
	warned.Admission = &report.AdmissionDetails{Operation: "UPDATE"}
	audit := record("web", "too many replicas")
	audit.Source, audit.Admission = report.SourceAudit, nil
	long := record("web", strings.Repeat("x", 2000))

	tests := []struct {
		name   string
		record *report.Record
		want   string
	}{
		{"denied", denied, "CREATE denied: violates policy td.replicas (high severity): too many replicas"},
		{"warned", warned, "UPDATE allowed with a warning: violates policy td.replicas (high severity), which is not enforced: too many replicas"},
		{"audit", audit, "violates policy td.replicas (high severity): too many replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.record); got != tt.want {
				t.Errorf("Message() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := Message(long); len(got) > maxMessageLength {
		t.Errorf("len(Message()) = %d, want at most %d", len(got), maxMessageLength)
	}
}

func TestViolationEvent(t *testing.T) {
	r := record("Web:Frontend", "too many replicas")
	event := violationEvent(r, "trusted-delivery-admission", "pod-1", metav1.Now())
	if event.Namespace != "team-a" || event.InvolvedObject.Name != "Web:Frontend" || string(event.InvolvedObject.UID) != "uid-1" {
		t.Errorf("event is in %s about %s (uid %s), want team-a, Web:Frontend, uid-1",
			event.Namespace, event.InvolvedObject.Name, event.InvolvedObject.UID)
	}
	if errs := validation.IsDNS1123Subdomain(event.Name); len(errs) > 0 {
		t.Errorf("event name %q is invalid: %v", event.Name, errs)
	}
	if !strings.HasPrefix(event.Name, "web-frontend.") {
		t.Errorf("event name %q does not start with the object name", event.Name)
	}
	for key, want := range map[string]string{AnnotationPolicy: "td.replicas", AnnotationSeverity: "high", AnnotationCategory: "reliability"} {
		if got := event.Annotations[key]; got != want {
			t.Errorf("annotation %s = %q, want %q", key, got, want)
		}
	}
	if event.Type != "Warning" || event.Reason != ReasonPolicyViolation || event.Action != "Admission" {
		t.Errorf("event type, reason, action = %s, %s, %s", event.Type, event.Reason, event.Action)
	}

	// A retried create carries a new UID but is the same violation.
	retried := record("Web:Frontend", "too many replicas")
	retried.Object.UID = "uid-2"
	if other := violationEvent(retried, "c", "i", metav1.Now()); other.Name != event.Name {
		t.Errorf("retry maps to Event %s, want %s", other.Name, event.Name)
	}
	changed := record("Web:Frontend", "other message")
	if other := violationEvent(changed, "c", "i", metav1.Now()); other.Name == event.Name {
		t.Errorf("another message maps to the same Event %s", other.Name)
	}

	long := record(strings.Repeat("a", 300), "too many replicas")
	if name := violationEvent(long, "c", "i", metav1.Now()).Name; len(name) > validation.DNS1123SubdomainMaxLength {
		t.Errorf("Event name of a 300-character object name has %d characters, want at most %d",
			len(name), validation.DNS1123SubdomainMaxLength)
	}

	cluster := record("admin", "m")
	cluster.Object.Namespace = ""
	if got := violationEvent(cluster, "c", "i", metav1.Now()).Namespace; got != metav1.NamespaceDefault {
		t.Errorf("Event of a cluster-scoped object is in %q, want default", got)
	}
}

// The writer is not started, so the queue fills up and nothing calls the
// API server.
func TestViolationQueuesAggregatesAndDrops(t *testing.T) {
	r := NewRecorder(nil, nil, Options{QueueSize: 1, Window: time.Minute})
	aggregated := metrics.EventsAggregated.WithLabelValues(report.SourceAdmission)
	dropped := metrics.EventsDropped.WithLabelValues(report.SourceAdmission, metrics.DropReasonQueueFull)
	aggregatedBefore, droppedBefore := counter(aggregated), counter(dropped)

	r.Violation(t.Context(), record("web", "m"))
	r.Violation(t.Context(), record("web", "m"))
	r.Violation(t.Context(), record("api", "m"))

	if got := counter(aggregated) - aggregatedBefore; got != 1 {
		t.Errorf("aggregated %v violations, want 1", got)
	}
	if got := counter(dropped) - droppedBefore; got != 1 {
		t.Errorf("dropped %v violations, want 1", got)
	}
	if len(r.entries) != 1 {
		t.Fatalf("remembers %d violations, want 1", len(r.entries))
	}
	for _, e := range r.entries {
		if e.pending != 2 || !e.queued {
			t.Errorf("entry has %d pending and queued %t, want 2 and true", e.pending, e.queued)
		}
	}
}

func TestFlushExpiresOldViolations(t *testing.T) {
	r := NewRecorder(nil, nil, Options{QueueSize: 10, Window: time.Minute})
	r.Violation(t.Context(), record("web", "m"))
	<-r.queue
	for _, e := range r.entries {
		e.queued, e.pending = false, 0
		e.lastSeen = time.Now().Add(-2 * time.Minute)
	}
	r.Violation(t.Context(), record("api", "m"))
	r.flush(time.Now())
	if len(r.entries) != 1 {
		t.Errorf("remembers %d violations after the flush, want 1", len(r.entries))
	}
}
