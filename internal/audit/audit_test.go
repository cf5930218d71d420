package audit

import (
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// recordingSink keeps every record it receives.
type recordingSink struct {
	mu      sync.Mutex
	records []report.Record
}

func (s *recordingSink) Send(records []report.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, records...)
}

func (s *recordingSink) received() []report.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]report.Record(nil), s.records...)
}

var _ = Describe("Audit scan", func() {
	var (
		a    *Auditor
		sink *recordingSink
	)

	BeforeEach(func() {
		sink = &recordingSink{}
		a = newTestAuditor(nil, sink)
	})

	It("reports violations of objects that existed before the scan", func() {
		ns := createNamespace("")
		p := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "Deployment")
		createPolicy(a, p)
		// Five objects with a page size of two take three list calls.
		for _, name := range []string{"web", "api", "db"} {
			createDeployment(ns, name, nil)
		}
		createDeployment(ns, "worker", map[string]string{"owner": "team-a"})
		createDeployment(ns, "cache", map[string]string{"owner": "team-a"})

		results := run(a)

		Expect(results.PolicyCounts()[p.Name].Violations).To(BeEquivalentTo(3))
		r, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(resultsOf(r.Results)).To(ConsistOf(
			p.Name+" Deployment/api fail",
			p.Name+" Deployment/db fail",
			p.Name+" Deployment/web fail",
		))
		Expect(r.Summary.Pass).To(Equal(2))
		Expect(r.Summary.Fail).To(Equal(3))
		Expect(r.Source).To(Equal(report.ResultSource))
		Expect(r.Labels).To(HaveKeyWithValue(tenancyv1alpha1.ManagedByLabel, tenancyv1alpha1.ManagedByValue))
		Expect(r.Labels).To(HaveKeyWithValue(report.ComponentLabel, report.SourceAudit))
		Expect(r.Annotations).To(HaveKey(report.AuditTimeAnnotation))

		first := r.Results[0]
		Expect(string(first.Severity)).To(Equal(pacv2beta3.SeverityHigh))
		Expect(first.Category).To(Equal("test.categories.labels"))
		Expect(first.Description).To(Equal("Deployment api has no owner label"))
		Expect(first.Properties).To(HaveKeyWithValue(report.PropertySource, report.SourceAudit))
		Expect(first.Properties).To(HaveKeyWithValue(report.PropertyViolatingKeys, "metadata.labels"))
		Expect(first.Subjects).To(HaveLen(1))
		Expect(first.Subjects[0].APIVersion).To(Equal("apps/v1"))
		Expect(first.Subjects[0].Namespace).To(Equal(ns))
		Expect(first.Subjects[0].UID).NotTo(BeEmpty())

		By("sending one record per violation to the sink")
		var names []string
		for _, rec := range sink.received() {
			if rec.PolicyID == p.Name {
				names = append(names, rec.Object.Name)
			}
		}
		Expect(names).To(ConsistOf("web", "api", "db"))

		By("writing the Policy's violation count and audit time")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		Expect(p.Status.ViolationCount).To(HaveValue(BeEquivalentTo(3)))
		Expect(p.Status.LastAuditTime).NotTo(BeNil())
		Expect(fieldManagersOf(p.ManagedFields, "status")).To(ContainElement(FieldManager))
	})

	It("updates the report in place and drops fixed violations", func() {
		ns := createNamespace("")
		p := missingLabelPolicy("owner", pacv2beta3.SeverityMedium, ns, "Deployment")
		createPolicy(a, p)
		web := createDeployment(ns, "web", nil)
		createDeployment(ns, "api", nil)

		run(a)
		before, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(before.Results).To(HaveLen(2))

		web.Labels = map[string]string{"owner": "team-a"}
		Expect(k8sClient.Update(ctx, web)).To(Succeed())
		run(a)

		after, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.UID).To(Equal(before.UID), "the report is updated, not replaced")
		Expect(resultsOf(after.Results)).To(ConsistOf(p.Name + " Deployment/api fail"))
		var firstSeen metav1.Timestamp
		for _, r := range before.Results {
			if r.Subjects[0].Name == "api" {
				firstSeen = r.Timestamp
			}
		}
		Expect(after.Results[0].Timestamp).To(Equal(firstSeen), "the timestamp is when the violation was first found")
		Expect(after.Summary.Fail).To(Equal(1))
		Expect(after.Summary.Pass).To(Equal(1))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		Expect(p.Status.ViolationCount).To(HaveValue(BeEquivalentTo(1)))

		By("removing the report when the namespace has no audited objects left")
		Expect(k8sClient.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace(ns))).To(Succeed())
		run(a)
		_, err = auditReport(ns)
		Expect(isNotFound(err)).To(BeTrue(), "report still exists: %v", err)
	})

	It("skips objects with an ownerReference unless told to include them", func() {
		ns := createNamespace("")
		p := missingLabelPolicy("owner", pacv2beta3.SeverityLow, ns, "ConfigMap")
		createPolicy(a, p)
		owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner", Labels: map[string]string{"owner": "x"}}}
		Expect(k8sClient.Create(ctx, owner)).To(Succeed())
		owned := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      "owned",
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
			}},
		}}
		Expect(k8sClient.Create(ctx, owned)).To(Succeed())

		run(a)
		r, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Results).To(BeEmpty())
		Expect(r.Summary.Pass).To(Equal(1))

		a.Options.IncludeOwned = true
		run(a)
		r, err = auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(resultsOf(r.Results)).To(ConsistOf(p.Name + " ConfigMap/owned fail"))
	})

	It("removes the audit status of a policy that is no longer audited", func() {
		ns := createNamespace("")
		p := missingLabelPolicy("owner", pacv2beta3.SeverityLow, ns, "Deployment")
		createPolicy(a, p)
		createDeployment(ns, "web", nil)
		run(a)
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		Expect(p.Status.ViolationCount).To(HaveValue(BeEquivalentTo(1)))

		a.Engine.RemovePolicy(p.Name)
		run(a)
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		Expect(p.Status.ViolationCount).To(BeNil())
		Expect(p.Status.LastAuditTime).To(BeNil())
	})
})

// fieldManagersOf returns the managers that own fields under the top-level
// field.
func fieldManagersOf(entries []metav1.ManagedFieldsEntry, field string) []string {
	var managers []string
	for _, e := range entries {
		if e.FieldsV1 != nil && containsField(e.FieldsV1.Raw, field) {
			managers = append(managers, e.Manager)
		}
	}
	return managers
}

func containsField(raw []byte, field string) bool {
	return strings.Contains(string(raw), `"f:`+field+`"`)
}
