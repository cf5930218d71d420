package report

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// fluxReceiver is a loopback stand-in for the notification-controller
// events endpoint: it decodes each POST strictly into the event format.
type fluxReceiver struct {
	t *testing.T

	mu     sync.Mutex
	events []FluxEvent
	// fail makes the first n requests fail with 503.
	fail int
}

func newFluxReceiver(t *testing.T) (*fluxReceiver, *httptest.Server) {
	receiver := &fluxReceiver{t: t}
	server := httptest.NewServer(http.HandlerFunc(receiver.serve))
	t.Cleanup(server.Close)
	return receiver, server
}

func (f *fluxReceiver) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost {
		f.t.Errorf("method = %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if f.fail > 0 {
		f.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}

	body, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var event FluxEvent
	if err := dec.Decode(&event); err != nil {
		f.t.Errorf("event %s does not decode into the event format: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	for _, field := range []string{"involvedObject", "severity", "timestamp", "message", "reason", "reportingController"} {
		if _, ok := raw[field]; !ok {
			f.t.Errorf("event %s has no %s field", body, field)
		}
	}
	f.events = append(f.events, event)
	w.WriteHeader(http.StatusAccepted)
}

func (f *fluxReceiver) received() []FluxEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FluxEvent(nil), f.events...)
}

func TestFluxSinkPostsEventsForFluxOwners(t *testing.T) {
	g := NewWithT(t)
	receiver, server := newFluxReceiver(t)
	receiver.fail = 1
	sink, err := NewFluxSink(FluxConfig{
		Address:           server.URL,
		FlushInterval:     10 * time.Millisecond,
		RetryBackoff:      time.Millisecond,
		ReportingInstance: "manager-0",
	})
	g.Expect(err).NotTo(HaveOccurred())
	startSink(t, sink.Start)

	kustomized := testRecord("td.cpu-limit", "team-a", "web", "no CPU limit")
	kustomized.FluxOwner = &FluxOwner{Kind: "Kustomization", Namespace: "flux-system", Name: "apps"}
	released := testRecord("td.run-as-root", "team-a", "db", "runs as root")
	released.Severity = "medium"
	released.Source = SourceAdmission
	released.Admission = &AdmissionDetails{Operation: "CREATE", User: "alice", Denied: false}
	released.FluxOwner = &FluxOwner{Kind: "HelmRelease", Namespace: "team-a", Name: "db"}
	unowned := testRecord("td.cpu-limit", "team-a", "manual", "no CPU limit")
	sink.Send([]Record{kustomized, released, unowned})

	g.Eventually(receiver.received).Should(HaveLen(2))
	g.Consistently(receiver.received, 100*time.Millisecond).Should(HaveLen(2), "the unowned record is not sent")
	events := receiver.received()

	first := events[0]
	g.Expect(first.InvolvedObject.APIVersion).To(Equal("kustomize.toolkit.fluxcd.io/v1"))
	g.Expect(first.InvolvedObject.Kind).To(Equal("Kustomization"))
	g.Expect(first.InvolvedObject.Namespace).To(Equal("flux-system"))
	g.Expect(first.InvolvedObject.Name).To(Equal("apps"))
	g.Expect(first.Severity).To(Equal("error"), "high severity")
	g.Expect(first.Reason).To(Equal(FluxReasonAuditViolation))
	g.Expect(first.ReportingController).To(Equal(DefaultReportingController))
	g.Expect(first.ReportingInstance).To(Equal("manager-0"))
	g.Expect(first.Timestamp.Time.Equal(testTime)).To(BeTrue())
	g.Expect(first.Message).To(Equal(`Deployment team-a/web violates policy td.cpu-limit "Name of td.cpu-limit" (high severity): no CPU limit`))
	g.Expect(first.Metadata).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/policy", "td.cpu-limit"))
	g.Expect(first.Metadata).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/object", "Deployment/team-a/web"))

	second := events[1]
	g.Expect(second.InvolvedObject.APIVersion).To(Equal("helm.toolkit.fluxcd.io/v2"))
	g.Expect(second.InvolvedObject.Kind).To(Equal("HelmRelease"))
	g.Expect(second.Severity).To(Equal("info"), "a medium severity warning")
	g.Expect(second.Reason).To(Equal(FluxReasonAdmissionWarning))
	g.Expect(second.Metadata).To(HaveKeyWithValue("helm.toolkit.fluxcd.io/source", SourceAdmission))
}

func TestFluxOwnerOfLabels(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		want   *FluxOwner
	}{
		{name: "no labels", labels: nil, want: nil},
		{
			name:   "kustomization",
			labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
			want:   &FluxOwner{Kind: "Kustomization", Name: "apps", Namespace: "flux-system"},
		},
		{
			// Objects of a HelmRelease that a Kustomization applied carry
			// both; the HelmRelease is the closer owner.
			name: "helmrelease wins",
			labels: map[string]string{
				"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
				"helm.toolkit.fluxcd.io/name": "db", "helm.toolkit.fluxcd.io/namespace": "team-a",
			},
			want: &FluxOwner{Kind: "HelmRelease", Name: "db", Namespace: "team-a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := deploymentObject("team-a", "web")
			obj.SetLabels(tc.labels)
			g.Expect(FluxOwnerOf(obj)).To(Equal(tc.want))
		})
	}
}

func TestNewFluxSinkRejectsInvalidAddress(t *testing.T) {
	for _, address := range []string{"", "notification-controller", "ftp://127.0.0.1/"} {
		if _, err := NewFluxSink(FluxConfig{Address: address}); err == nil {
			t.Errorf("NewFluxSink(%q) returned no error", address)
		}
	}
}
