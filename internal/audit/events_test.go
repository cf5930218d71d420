package audit

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tdevents "github.com/trusted-delivery/trusted-delivery/internal/events"
)

// violationEvents returns the violation Events in namespace about the
// object named name.
func violationEvents(namespace, name string) []corev1.Event {
	list := &corev1.EventList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	var events []corev1.Event
	for _, e := range list.Items {
		if e.Reason == tdevents.ReasonPolicyViolation && e.InvolvedObject.Name == name {
			events = append(events, e)
		}
	}
	return events
}

var _ = Describe("Violation Events", func() {
	It("records one Event per object, policy and message with a count across scans", func() {
		recorder := tdevents.NewRecorder(k8sClient, k8sClient, tdevents.Options{
			Component:     EventComponent,
			Rate:          1000,
			FlushInterval: 100 * time.Millisecond,
		})
		recorderCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(recorder.Start(recorderCtx)).To(Succeed())
		}()
		DeferCleanup(func() {
			stop()
			<-done
		})
		a := newTestAuditor(recorder, nil)

		ns := createNamespace("")
		p := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "Deployment")
		createPolicy(a, p)
		createDeployment(ns, "web", nil)

		run(a)
		Eventually(func(g Gomega) {
			events := violationEvents(ns, "web")
			g.Expect(events).To(HaveLen(1))
			g.Expect(events[0].Count).To(BeEquivalentTo(1))
		}).Should(Succeed())

		run(a)
		run(a)
		Eventually(func(g Gomega) {
			events := violationEvents(ns, "web")
			g.Expect(events).To(HaveLen(1), "a violation found again adds no Event")
			g.Expect(events[0].Count).To(BeEquivalentTo(3))
		}).Should(Succeed())

		event := violationEvents(ns, "web")[0]
		Expect(event.Type).To(Equal(corev1.EventTypeWarning))
		Expect(event.InvolvedObject.Kind).To(Equal("Deployment"))
		Expect(event.InvolvedObject.UID).NotTo(BeEmpty())
		Expect(event.Message).To(Equal("violates policy " + p.Name + " (high severity): Deployment web has no owner label"))
		Expect(event.Annotations).To(HaveKeyWithValue(tdevents.AnnotationPolicy, p.Name))
		Expect(event.Annotations).To(HaveKeyWithValue(tdevents.AnnotationSeverity, "high"))
		Expect(event.ReportingController).To(Equal(EventComponent))
		Expect(event.Action).To(Equal("Audit"))
		Expect(event.Message).NotTo(ContainSubstring("registry.example"), "the Event carries the manifest")
		Expect(event.LastTimestamp.Time).NotTo(BeTemporally("<", event.FirstTimestamp.Time))
	})
})
