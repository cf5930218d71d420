package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// getJSON sends GET path?query to server and decodes the body into out. It
// returns the status code.
func getJSON(server *httptest.Server, path string, query url.Values, out any) int {
	res, err := http.Get(server.URL + path + "?" + query.Encode())
	Expect(err).NotTo(HaveOccurred())
	defer res.Body.Close()
	Expect(res.Header.Get("Content-Type")).To(Equal("application/json"))
	Expect(json.NewDecoder(res.Body).Decode(out)).To(Succeed())
	return res.StatusCode
}

// listViolations calls GET /api/v1/violations with query.
func listViolations(server *httptest.Server, query url.Values) (report.ViolationList, int) {
	var list report.ViolationList
	status := getJSON(server, report.ViolationsPath, query, &list)
	return list, status
}

// startAdmissionSink runs an admission report sink until the spec ends.
func startAdmissionSink() *report.AdmissionReportSink {
	sink := report.NewAdmissionReportSink(k8sClient, k8sClient, FieldManager, 0, 0)
	sinkCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(sink.Start(sinkCtx)).To(Succeed())
	}()
	DeferCleanup(func() {
		stop()
		<-done
	})
	return sink
}

// admissionRecords evaluates obj as an admission CREATE by alice with the
// auditor's engine and returns the records.
func admissionRecords(a *Auditor, obj client.Object, workspace string) []report.Record {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	raw, err := json.Marshal(content)
	Expect(err).NotTo(HaveOccurred())
	gvk := obj.GetObjectKind().GroupVersionKind()
	req := admissionv1.AdmissionRequest{
		UID:       "req-1",
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Namespace: obj.GetNamespace(),
		Name:      obj.GetName(),
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: "alice"},
		Object:    runtime.RawExtension{Raw: raw},
	}
	review, subject, err := policy.ReviewFromAdmission(req)
	Expect(err).NotTo(HaveOccurred())
	results := a.Engine.Evaluate(ctx, policy.ModeAdmission, review, policy.Subject{Object: subject})
	return report.AdmissionRecords(time.Now(), &req, subject, workspace, results, true)
}

var _ = Describe("Read API", func() {
	var (
		a      *Auditor
		server *httptest.Server
	)

	BeforeEach(func() {
		a = newTestAuditor(nil, nil)
		api := &report.ReadAPI{Reader: k8sClient}
		mux := http.NewServeMux()
		for path, handler := range api.Handlers() {
			mux.Handle(path, handler)
		}
		server = httptest.NewServer(mux)
		DeferCleanup(server.Close)
	})

	It("lists audit violations with filters and pages", func() {
		workspace := "ws-" + rand.String(6)
		ns := createNamespace(workspace)
		high := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "Deployment")
		low := missingLabelPolicy("team", pacv2beta3.SeverityLow, ns, "Deployment")
		createPolicy(a, high)
		createPolicy(a, low)
		createDeployment(ns, "web", nil)
		createDeployment(ns, "api", nil)
		run(a)

		list, status := listViolations(server, url.Values{"namespace": {ns}})
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(4))
		Expect(list.Continue).To(BeEmpty())
		Expect(list.Items[0].Severity).To(Equal(pacv2beta3.SeverityHigh), "the worst severity comes first")
		Expect(list.Items[0].Source).To(Equal(report.SourceAudit))
		Expect(list.Items[0].Workspace).To(Equal(workspace))
		Expect(list.Items[0].Object.Namespace).To(Equal(ns))

		By("filtering by severity and policy")
		list, status = listViolations(server, url.Values{"namespace": {ns}, "severity": {"low"}})
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(2))
		Expect(list.Items).To(HaveEach(HaveField("Policy", low.Name)))
		list, status = listViolations(server, url.Values{"policy": {high.Name}, "workspace": {workspace}})
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(2))
		list, status = listViolations(server, url.Values{"namespace": {ns}, "source": {"admission"}})
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(BeEmpty())

		By("paging with limit and continue")
		var names []string
		query := url.Values{"namespace": {ns}, "limit": {"3"}}
		list, status = listViolations(server, query)
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(3))
		Expect(list.Continue).NotTo(BeEmpty())
		for _, v := range list.Items {
			names = append(names, v.Policy+"/"+v.Object.Name)
		}
		query.Set("continue", list.Continue)
		list, status = listViolations(server, query)
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(1))
		Expect(list.Continue).To(BeEmpty())
		names = append(names, list.Items[0].Policy+"/"+list.Items[0].Object.Name)
		Expect(names).To(ConsistOf(high.Name+"/web", high.Name+"/api", low.Name+"/web", low.Name+"/api"))

		By("summarizing per Workspace and per policy")
		var summary report.Summary
		Expect(getJSON(server, report.SummaryPath, nil, &summary)).To(Equal(http.StatusOK))
		Expect(summary.LastAuditTime).NotTo(BeEmpty())
		Expect(summary.Workspaces).To(ContainElement(And(
			HaveField("Name", workspace),
			HaveField("Namespaces", ConsistOf(ns)),
			HaveField("AuditViolations", 4),
		)))
		Expect(summary.Policies).To(ContainElement(And(
			HaveField("ID", high.Name),
			HaveField("Severity", pacv2beta3.SeverityHigh),
			HaveField("AuditViolations", HaveValue(BeEquivalentTo(2))),
		)))
	})

	It("rejects invalid filters", func() {
		var body map[string]string
		Expect(getJSON(server, report.ViolationsPath, url.Values{"severity": {"critical"}}, &body)).To(Equal(http.StatusBadRequest))
		Expect(body["error"]).To(ContainSubstring(`invalid severity "critical"`))
		Expect(getJSON(server, report.ViolationsPath, url.Values{"limit": {"0"}}, &body)).To(Equal(http.StatusBadRequest))
		Expect(getJSON(server, report.ViolationsPath, url.Values{"continue": {"???"}}, &body)).To(Equal(http.StatusBadRequest))

		res, err := http.Post(server.URL+report.ViolationsPath, "application/json", nil)
		Expect(err).NotTo(HaveOccurred())
		res.Body.Close()
		Expect(res.StatusCode).To(Equal(http.StatusMethodNotAllowed))
	})

	It("lists admission violations from the admission reports", func() {
		workspace := "ws-" + rand.String(6)
		ns := createNamespace(workspace)
		p := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "ConfigMap")
		createPolicy(a, p)
		sink := startAdmissionSink()

		cm := &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"},
		}
		records := admissionRecords(a, cm, workspace)
		Expect(records).To(HaveLen(1))
		sink.Send(records)
		sink.Send(admissionRecords(a, cm, workspace))

		var stored *openreportsv1alpha1.Report
		Eventually(func(g Gomega) {
			stored = &openreportsv1alpha1.Report{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: report.AdmissionReportName}, stored)).To(Succeed())
			g.Expect(stored.Results).To(HaveLen(1))
			g.Expect(stored.Results[0].Properties).To(HaveKeyWithValue(report.PropertyCount, "2"))
		}).Should(Succeed())
		Expect(stored.Summary.Fail).To(Equal(1))
		Expect(stored.Results[0].Properties).To(HaveKeyWithValue(report.PropertyUser, "alice"))
		Expect(stored.Results[0].Properties).To(HaveKeyWithValue(report.PropertyOperation, "CREATE"))

		list, status := listViolations(server, url.Values{"namespace": {ns}, "source": {"admission"}})
		Expect(status).To(Equal(http.StatusOK))
		Expect(list.Items).To(HaveLen(1))
		Expect(list.Items[0].Source).To(Equal(report.SourceAdmission))
		Expect(list.Items[0].Result).To(Equal(report.StatusFail))
		Expect(list.Items[0].Policy).To(Equal(p.Name))
		Expect(list.Items[0].Object.Name).To(Equal("settings"))

		var summary report.Summary
		Expect(getJSON(server, report.SummaryPath, nil, &summary)).To(Equal(http.StatusOK))
		Expect(summary.Workspaces).To(ContainElement(And(HaveField("Name", workspace), HaveField("AdmissionViolations", 1))))
		Expect(summary.Policies).To(ContainElement(And(HaveField("ID", p.Name), HaveField("AdmissionViolations", 1))))
	})
})

var _ = Describe("Elasticsearch credentials", func() {
	It("reads an API key or a username and password from a Secret", func() {
		ns := createNamespace("")
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "es"},
			Data: map[string][]byte{
				report.SecretKeyUsername: []byte("writer"),
				report.SecretKeyPassword: []byte("s3cret"),
				report.SecretKeyCACert:   []byte("-----BEGIN CERTIFICATE-----"),
			},
		}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())

		var cfg report.ElasticsearchConfig
		Expect(report.ElasticsearchCredentials(ctx, k8sClient, ns+"/es", &cfg)).To(Succeed())
		Expect(cfg.Username).To(Equal("writer"))
		Expect(cfg.Password).To(Equal("s3cret"))
		Expect(cfg.CACert).To(HavePrefix("-----BEGIN"))

		secret.Data = map[string][]byte{report.SecretKeyUsername: []byte("writer")}
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		err := report.ElasticsearchCredentials(ctx, k8sClient, ns+"/es", &cfg)
		Expect(err).To(MatchError(ContainSubstring("set api-key, or both username and password")))
		Expect(err.Error()).NotTo(ContainSubstring("writer"), "the error leaks a credential")

		Expect(report.ElasticsearchCredentials(ctx, k8sClient, "no-slash", &cfg)).To(MatchError(ContainSubstring("not namespace/name")))
		Expect(report.ElasticsearchCredentials(ctx, k8sClient, ns+"/missing", &cfg)).To(MatchError(ContainSubstring("not found")))
	})
})
