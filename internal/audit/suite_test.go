package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/kube"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// The suite runs audit scans against a real API server with the operator's
// and the OpenReports CRDs. Specs call Auditor.Run directly and check what
// it wrote; the policies are loaded into the engine by the spec, as the
// policy reconcilers would.

var (
	env       *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    *runtime.Scheme
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestAudit(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Audit suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Generous because CI machines have 2 cores shared by several test
	// packages; Eventually returns as soon as the check passes.
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	env = testenv.New(testenv.Options{})
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, filepath.Join(testenv.RepoRoot(), "test", "crds", "openreports"))
	var err error
	cfg, err = testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())

	scheme = kube.NewScheme()
	Expect(report.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// newTestAuditor returns an Auditor with its own engine that reads and
// writes through the uncached test client.
func newTestAuditor(events ViolationEvents, sink report.Sink) *Auditor {
	dyn, err := dynamic.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	engine := policy.NewEngine(policy.Options{})
	engine.MarkSynced()
	return &Auditor{
		Engine:    engine,
		Client:    k8sClient,
		APIReader: k8sClient,
		Dynamic:   dyn,
		Discovery: disc,
		Reports:   &report.ReportWriter{Client: k8sClient, Reader: k8sClient, FieldManager: FieldManager},
		Sink:      sink,
		Events:    events,
		Options:   Options{PageSize: 2},
	}
}

// missingLabelPolicy returns a policy that every object of kinds in
// namespace without the label violates. The name is unique per call. The
// namespace target keeps objects of other specs out, because namespaces
// are never removed without a namespace controller.
func missingLabelPolicy(label, severity, namespace string, kinds ...string) *pacv2beta3.Policy {
	name := "td.test.label-" + rand.String(6)
	code := fmt.Sprintf(`package td.test.label

violation contains {"msg": msg, "violating_key": "metadata.labels"} if {
	not input.review.object.metadata.labels[%q]
	msg := sprintf("%%s %%s has no %s label", [input.review.kind.kind, input.review.name])
}
`, label, label)
	return &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pacv2beta3.PolicySpec{
			Name:     "Objects carry the " + label + " label",
			Severity: severity,
			Category: "test.categories.labels",
			Code:     code,
			Targets:  pacv2beta3.PolicyTargets{Kinds: kinds, Namespaces: []string{namespace}},
		},
	}
}

// createPolicy creates the policy and loads it into the auditor's engine;
// the policy is deleted and unloaded when the spec ends.
func createPolicy(a *Auditor, p *pacv2beta3.Policy) {
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
	status := a.Engine.UpsertPolicy(p)
	Expect(status.Ready).To(BeTrue(), "policy %s is not ready: %s", p.Name, status.Message)
	DeferCleanup(func() {
		a.Engine.RemovePolicy(p.Name)
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
	})
}

// createNamespace creates a namespace with a random name, labelled for
// workspace when it is not empty.
func createNamespace(workspace string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "audit-" + rand.String(6)}}
	if workspace != "" {
		ns.Labels = map[string]string{tenancyv1alpha1.TenantLabel: workspace}
	}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, ns))).To(Succeed())
	})
	return ns.Name
}

// createDeployment creates a Deployment with the labels on its metadata.
func createDeployment(namespace, name string, labels map[string]string) *appsv1.Deployment {
	selector := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: selector},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
	Expect(k8sClient.Create(ctx, d)).To(Succeed())
	return d
}

// auditReport returns the audit Report of namespace.
func auditReport(namespace string) (*openreportsv1alpha1.Report, error) {
	r := &openreportsv1alpha1.Report{}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: report.AuditReportName}, r)
	return r, err
}

func clusterAuditReport() *openreportsv1alpha1.ClusterReport {
	r := &openreportsv1alpha1.ClusterReport{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Name: report.AuditReportName}, r)).To(Succeed())
	return r
}

// resultsOf returns "policy kind/name result" for each result, to compare
// report contents in one assertion.
func resultsOf(results []openreportsv1alpha1.ReportResult) []string {
	out := make([]string, 0, len(results))
	for _, r := range results {
		name := ""
		if len(r.Subjects) > 0 {
			name = r.Subjects[0].Kind + "/" + r.Subjects[0].Name
		}
		out = append(out, fmt.Sprintf("%s %s %s", r.Policy, name, r.Result))
	}
	return out
}

func run(a *Auditor) *report.AuditResults {
	results, err := a.Run(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(results.Complete()).To(BeTrue())
	return results
}

func isNotFound(err error) bool {
	return apierrors.IsNotFound(err)
}

func counterValue(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	Expect(c.Write(m)).To(Succeed())
	return m.GetCounter().GetValue()
}
