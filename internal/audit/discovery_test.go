package audit

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// widgetCRD returns a namespaced CRD of kind kind in a group unique to the
// call, so that specs do not share it.
func widgetCRD(kind string) *apiextensionsv1.CustomResourceDefinition {
	group := rand.String(6) + ".test.trusted-delivery.io"
	plural := "widgets"
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: "widget"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name:    "v1",
				Served:  true,
				Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type:                   "object",
					XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

var _ = Describe("Audit scope", func() {
	var a *Auditor

	BeforeEach(func() {
		a = newTestAuditor(nil, nil)
	})

	It("audits a kind whose CRD was installed after the auditor started", func() {
		ns := createNamespace("")
		kind := "Widget" + rand.String(4)
		p := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, kind)
		createPolicy(a, p)

		By("running before the kind exists")
		results := run(a)
		Expect(results.Failures()).To(BeEmpty())
		Expect(results.PolicyCounts()[p.Name].Violations).To(BeZero())

		crd := widgetCRD(kind)
		_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			Expect(envtest.UninstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})).To(Succeed())
		})
		widget := &unstructured.Unstructured{}
		widget.SetAPIVersion(crd.Spec.Group + "/v1")
		widget.SetKind(kind)
		widget.SetNamespace(ns)
		widget.SetName("gear")
		Expect(k8sClient.Create(ctx, widget)).To(Succeed())

		By("running after the kind was installed")
		run(a)
		r, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(resultsOf(r.Results)).To(ConsistOf(p.Name + " " + kind + "/gear fail"))
		Expect(r.Results[0].Subjects[0].APIVersion).To(Equal(crd.Spec.Group + "/v1"))
	})

	It("audits the rest of the cluster when an API group is unavailable", func() {
		ns := createNamespace("")
		// No kinds: the policy targets every kind, so every group matters.
		p := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns)
		createPolicy(a, p)
		createDeployment(ns, "web", nil)

		group := rand.String(6) + ".unavailable.test.trusted-delivery.io"
		apiService := unavailableAPIService(group)
		Expect(k8sClient.Create(ctx, apiService)).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, apiService))).To(Succeed())
		})
		before := counterValue(auditDiscoveryFailures.WithLabelValues(group + "/v1"))

		// The aggregator marks the group unavailable once it failed to
		// reach the backend, which may take a moment after creation.
		var results *report.AuditResults
		Eventually(func(g Gomega) {
			var err error
			results, err = a.Run(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(failedGroupVersions(results)).To(ContainElement(group + "/v1"))
		}).Should(Succeed())

		By("still auditing the available groups")
		r, err := auditReport(ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(resultsOf(r.Results)).To(ContainElement(p.Name + " Deployment/web fail"))

		By("reporting the failure in the ClusterReport summary and the metrics")
		cluster := clusterAuditReport()
		Expect(cluster.Summary.Error).To(BeNumerically(">=", 1))
		var scanErrors []string
		for _, result := range cluster.Results {
			if result.Policy == report.AuditScanPolicy {
				scanErrors = append(scanErrors, result.Properties[report.PropertyGroupVersion])
			}
		}
		Expect(scanErrors).To(ContainElement(group + "/v1"))
		Expect(counterValue(auditDiscoveryFailures.WithLabelValues(group+"/v1")) - before).To(BeNumerically(">=", 1))
	})
})

// unavailableAPIService registers group/v1 with a backend Service that does
// not exist.
func unavailableAPIService(group string) *unstructured.Unstructured {
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"group":                 group,
			"version":               "v1",
			"groupPriorityMinimum":  int64(1000),
			"versionPriority":       int64(15),
			"insecureSkipTLSVerify": true,
			"service": map[string]any{
				"namespace": "default",
				"name":      "missing-backend",
				"port":      int64(443),
			},
		},
	}}
	apiService.SetAPIVersion("apiregistration.k8s.io/v1")
	apiService.SetKind("APIService")
	apiService.SetName("v1." + group)
	return apiService
}

func failedGroupVersions(results *report.AuditResults) []string {
	var gvs []string
	for _, f := range results.Failures() {
		gvs = append(gvs, f.GroupVersion.String())
	}
	return gvs
}
