package audit

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

var _ = Describe("Auditor in a manager", func() {
	It("scans at start-up and again shortly after a policy change", func() {
		ns := createNamespace("")
		createDeployment(ns, "web", nil)

		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		engine := policy.NewEngine(policy.Options{})
		// The interval is far beyond the spec's timeout, so the second scan
		// can only come from the trigger.
		auditor, err := New(mgr, engine, Options{Interval: time.Hour, Debounce: 200 * time.Millisecond}, nil, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(auditor.SetupWithManager(mgr)).To(Succeed())

		createEnginePolicy := func(p *pacv2beta3.Policy) {
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
			DeferCleanup(func() {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
			})
			Expect(engine.UpsertPolicy(p).Ready).To(BeTrue())
		}
		first := missingLabelPolicy("owner", pacv2beta3.SeverityHigh, ns, "Deployment")
		createEnginePolicy(first)

		mgrCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(mgrCtx)).To(Succeed())
		}()
		DeferCleanup(func() {
			stop()
			<-done
		})

		By("waiting for the engine before the first scan")
		Consistently(func() error { _, err := auditReport(ns); return err }, "500ms").ShouldNot(Succeed())
		engine.MarkSynced()
		Eventually(func(g Gomega) {
			r, err := auditReport(ns)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resultsOf(r.Results)).To(ConsistOf(first.Name + " Deployment/web fail"))
		}).Should(Succeed())

		By("scanning again after a new policy")
		second := missingLabelPolicy("team", pacv2beta3.SeverityLow, ns, "Deployment")
		createEnginePolicy(second)
		Eventually(func(g Gomega) {
			r, err := auditReport(ns)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resultsOf(r.Results)).To(ConsistOf(
				first.Name+" Deployment/web fail",
				second.Name+" Deployment/web fail",
			))
		}).Should(Succeed())
	})
})

// freeAddress returns a loopback address with a port that was free a
// moment ago.
func freeAddress() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

var _ = Describe("Manager wiring", func() {
	It("serves the read API on the metrics server and builds the configured sinks", func() {
		metricsAddress := freeAddress()
		// The manager gets its own scheme without the OpenReports kinds, as
		// kube.NewScheme returns it, to check that the setup adds them.
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 kube.NewScheme(),
			Metrics:                metricsserver.Options{BindAddress: metricsAddress},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(report.RegisterReadAPI(mgr)).To(Succeed())

		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
		}))
		DeferCleanup(receiver.Close)
		sinks, err := report.NewSinks(ctx, mgr, report.SinkOptions{
			FluxNotificationAddress: receiver.URL,
			ViolationsFile:          filepath.Join(GinkgoT().TempDir(), "violations.jsonl"),
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(sinks).To(HaveLen(3))
		Expect(sinks[0]).To(BeAssignableToTypeOf(&report.AdmissionReportSink{}))
		Expect(sinks[1]).To(BeAssignableToTypeOf(&report.FluxSink{}))
		Expect(sinks[2]).To(BeAssignableToTypeOf(&report.FileSink{}))

		_, err = report.NewSinks(ctx, mgr, report.SinkOptions{
			ElasticsearchAddresses:         "http://127.0.0.1:9200",
			ElasticsearchCredentialsSecret: "default/missing",
		})
		Expect(err).To(MatchError(ContainSubstring("read Elasticsearch credentials Secret default/missing")))

		mgrCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(mgrCtx)).To(Succeed())
		}()
		DeferCleanup(func() {
			stop()
			<-done
		})

		Eventually(func(g Gomega) {
			res, err := http.Get("http://" + metricsAddress + report.SummaryPath)
			g.Expect(err).NotTo(HaveOccurred())
			defer res.Body.Close()
			g.Expect(res.StatusCode).To(Equal(http.StatusOK))
			var summary report.Summary
			g.Expect(json.NewDecoder(res.Body).Decode(&summary)).To(Succeed())
		}).Should(Succeed())
	})
})
