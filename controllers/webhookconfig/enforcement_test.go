package webhookconfig

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/events"
	"github.com/trusted-delivery/trusted-delivery/internal/metrics"
)

// replicasCode denies Deployments with more replicas than max_replicas.
const replicasCode = `package tdtest.replicas

import rego.v1

violation contains result if {
	replicas := input.review.object.spec.replicas
	replicas > input.parameters.max_replicas
	result := {
		"msg": sprintf("spec.replicas is %v, more than %v", [replicas, input.parameters.max_replicas]),
		"violating_key": "spec.replicas",
	}
}
`

const replicasHowToSolve = "Lower spec.replicas, or raise max_replicas\nwith a PolicyConfig."

// replicasPolicy creates an enforced policy on Deployments in the
// namespaces that allows at most 3 replicas, and deletes it after the spec.
func replicasPolicy(namespaces []string, mutate ...func(*pacv2beta3.Policy)) *pacv2beta3.Policy {
	p := &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("td.test.replicas")},
		Spec: pacv2beta3.PolicySpec{
			Name:       "Replica limit",
			Severity:   pacv2beta3.SeverityHigh,
			Category:   "reliability",
			HowToSolve: replicasHowToSolve,
			Code:       replicasCode,
			Targets:    pacv2beta3.PolicyTargets{Kinds: []string{"Deployment"}, Namespaces: namespaces},
			Parameters: []pacv2beta3.PolicyParameters{{
				Name:  "max_replicas",
				Type:  pacv2beta3.ParameterTypeInteger,
				Value: jsonValue(3),
			}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	mustCreate(p)
	return p
}

func jsonValue(v any) *apiextensionsv1.JSON {
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return &apiextensionsv1.JSON{Raw: raw}
}

// deniedDryRun creates obj with dry-run and returns the denial, failing g
// while the request is admitted.
func deniedDryRun(g Gomega, obj client.Object) string {
	err := k8sClient.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll)
	g.Expect(err).To(HaveOccurred(), "%s is denied", describe(obj))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "denial is Forbidden: %v", err)
	return err.Error()
}

// waitUntilEnforced waits until the policy denies the violating object.
func waitUntilEnforced(p *pacv2beta3.Policy, violating client.Object) {
	Eventually(func(g Gomega) {
		g.Expect(deniedDryRun(g, violating)).To(ContainSubstring(p.Name))
	}).Should(Succeed(), "policy %s is enforced", p.Name)
}

var _ = Describe("Enforcement webhook", func() {
	It("denies a violating Deployment with the policy, object, message and how to solve", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "web", 5))

		err := k8sClient.Create(ctx, deployment(ns, "web", 5))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "denied: %v", err)
		message := err.Error()
		Expect(message).To(ContainSubstring(`admission webhook "enforce.pac.weave.works" denied the request`))
		Expect(message).To(ContainSubstring("Deployment " + ns + "/web violates 1 enforced policy"))
		Expect(message).To(ContainSubstring(p.Name + " (Replica limit)"))
		Expect(message).To(ContainSubstring("spec.replicas is 5, more than 3"))
		Expect(message).To(ContainSubstring("How to solve: Lower spec.replicas, or raise max_replicas with a PolicyConfig."))

		Eventually(func(g Gomega) {
			found := violationEvents(g, ns, "web")
			g.Expect(found).To(HaveLen(1))
			event := found[0]
			g.Expect(event.Type).To(Equal(corev1.EventTypeWarning))
			g.Expect(event.Annotations).To(HaveKeyWithValue(events.AnnotationPolicy, p.Name))
			g.Expect(event.Annotations).To(HaveKeyWithValue(events.AnnotationSeverity, pacv2beta3.SeverityHigh))
			g.Expect(event.Annotations).To(HaveKeyWithValue(events.AnnotationCategory, "reliability"))
			g.Expect(event.Message).To(ContainSubstring("CREATE denied"))
			g.Expect(event.Message).NotTo(ContainSubstring("registry.example"), "the manifest is not in the Event")
		}).Should(Succeed())
	})

	It("admits a compliant Deployment", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "web", 5))

		mustCreate(deployment(ns, "web", 2))
		Expect(metrics.AdmissionPolicyDecisions.WithLabelValues(p.Name, metrics.ResultPass)).To(
			WithTransform(counterValue, BeNumerically(">=", 1)))
	})

	It("admits a violation of a policy that is not enforced with a warning", func() {
		ns := createNamespace()
		enforced := replicasPolicy([]string{ns})
		notEnforced := replicasPolicy([]string{ns}, func(p *pacv2beta3.Policy) {
			p.Spec.Enforce = ptr.To(false)
			p.Spec.Parameters[0].Value = jsonValue(1)
		})
		waitUntilEnforced(enforced, deployment(ns, "web", 5))

		mustCreate(deployment(ns, "web", 2))
		// The denials while waiting carried warnings too; this one is about
		// the admitted Deployment.
		found := warnings.containing(notEnforced.Name + " (Replica limit): spec.replicas is 2")
		Expect(found).To(ConsistOf(
			"policy not enforced: " + notEnforced.Name + " (Replica limit): spec.replicas is 2, more than 1. " +
				"How to solve: Lower spec.replicas, or raise max_replicas with a PolicyConfig."))

		Eventually(func(g Gomega) {
			found := violationEvents(g, ns, "web")
			g.Expect(found).To(HaveLen(1))
			g.Expect(found[0].Message).To(ContainSubstring("CREATE allowed with a warning"))
		}).Should(Succeed())
	})

	It("writes no Event for a dry-run request", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "dry", 5))

		// The Recorder writes in order, so once the Event of the later
		// request exists, an Event of the dry-run request would too.
		Expect(k8sClient.Create(ctx, deployment(ns, "dry", 5), client.DryRunAll)).NotTo(Succeed())
		Expect(k8sClient.Create(ctx, deployment(ns, "real", 5))).NotTo(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(violationEvents(g, ns, "real")).To(HaveLen(1))
		}).Should(Succeed())
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		for _, e := range list.Items {
			Expect(e.InvolvedObject.Name).NotTo(Equal("dry"), "Event %s is about the dry-run request", e.Name)
		}
	})

	It("counts repeated denials on one Event", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "web", 5))

		for range 3 {
			Expect(k8sClient.Create(ctx, deployment(ns, "web", 5))).NotTo(Succeed())
		}
		Eventually(func(g Gomega) {
			found := violationEvents(g, ns, "web")
			g.Expect(found).To(HaveLen(1))
			g.Expect(found[0].Count).To(BeNumerically("==", 3))
		}).Should(Succeed())
	})

	It("keeps enforcing other policies when one times out and one lacks a parameter", func() {
		ns := createNamespace()
		slow := replicasPolicy([]string{ns}, func(p *pacv2beta3.Policy) {
			// About 10^8 iterations, far beyond the engine's 1s deadline.
			p.Spec.Code = `package tdtest.slow

import rego.v1

violation contains {"msg": "never reached"} if {
	some i in numbers.range(1, 10000)
	some j in numbers.range(1, 10000)
	i == j + 20000
}
`
		})
		unset := replicasPolicy([]string{ns}, func(p *pacv2beta3.Policy) {
			p.Spec.Parameters[0].Value = nil
			p.Spec.Parameters[0].Required = true
		})
		good := replicasPolicy([]string{ns})
		waitUntilEnforced(good, deployment(ns, "web", 5))

		message := deniedDryRun(Default, deployment(ns, "web", 5))
		Expect(message).To(ContainSubstring("violates 1 enforced policy"))
		Expect(message).NotTo(ContainSubstring(slow.Name))
		Expect(message).NotTo(ContainSubstring(unset.Name))

		mustCreate(deployment(ns, "web", 2))
		for _, broken := range []string{slow.Name, unset.Name} {
			Expect(metrics.AdmissionPolicyDecisions.WithLabelValues(broken, metrics.ResultError)).To(
				WithTransform(counterValue, BeNumerically(">=", 2)), "errors of %s", broken)
			Expect(warnings.containing("enforced policy "+broken+" could not be evaluated and did not check this request")).
				NotTo(BeEmpty(), "the client is told that %s did not check its request", broken)
		}
	})

	It("checks the ephemeral containers that kubectl debug adds to a Pod", func() {
		ns := createNamespace()
		p := &pacv2beta3.Policy{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("td.test.privileged")},
			Spec: pacv2beta3.PolicySpec{
				Name:     "No privileged containers",
				Severity: pacv2beta3.SeverityHigh,
				Code: `package tdtest.privileged

import rego.v1

violation contains {"msg": sprintf("container %s is privileged", [c.name])} if {
	some field in ["containers", "ephemeralContainers"]
	some c in input.review.object.spec[field]
	c.securityContext.privileged
}
`,
				Targets: pacv2beta3.PolicyTargets{Kinds: []string{"Pod"}, Namespaces: []string{ns}},
			},
		}
		mustCreate(p)
		privileged := &corev1.SecurityContext{Privileged: ptr.To(true)}
		waitUntilEnforced(p, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/app:1.0.0", SecurityContext: privileged,
			}}},
		})

		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0.0"}}},
		}
		mustCreate(pod)
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debug", Image: "registry.example/debug:1.0.0", SecurityContext: privileged,
		}}}
		err := k8sClient.SubResource("ephemeralcontainers").Update(ctx, pod)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "adding a privileged ephemeral container is denied: %v", err)
		Expect(err.Error()).To(ContainSubstring("container debug is privileged"))

		pod.Spec.EphemeralContainers[0].SecurityContext = nil
		Expect(k8sClient.SubResource("ephemeralcontainers").Update(ctx, pod)).To(Succeed())
	})

	It("applies a PolicyConfig override", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "web", 5))

		mustCreate(&pacv2beta3.PolicyConfig{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("replicas")},
			Spec: pacv2beta3.PolicyConfigSpec{
				Match: pacv2beta3.PolicyConfigTarget{Namespaces: []string{ns}},
				Config: map[string]pacv2beta3.PolicyConfigConfig{
					p.Name: {Parameters: map[string]apiextensionsv1.JSON{"max_replicas": *jsonValue(10)}},
				},
			},
		})
		Eventually(func() error {
			return k8sClient.Create(ctx, deployment(ns, "web", 5), client.DryRunAll)
		}).Should(Succeed(), "the override admits 5 replicas")
		Expect(deniedDryRun(Default, deployment(ns, "web", 11))).To(ContainSubstring("more than 10"))
	})

	It("enforces a Weave v2beta2 policy written in Rego v0", func() {
		ns := createNamespace()
		manifest := fmt.Sprintf(weaveReplicaCountPolicy, uniqueName("weave.policies.containers-minimum-replica-count"), ns)
		obj := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(manifest), &obj.Object)).To(Succeed())
		mustCreate(obj)

		Eventually(func(g Gomega) {
			g.Expect(deniedDryRun(g, deployment(ns, "web", 1))).To(
				ContainSubstring("Replica count must be greater than or equal to '2'; found '1'."))
		}).Should(Succeed())
		Expect(k8sClient.Create(ctx, deployment(ns, "web", 2), client.DryRunAll)).To(Succeed())
	})

	It("does not enforce in kube-system, the operator namespace or namespaces from the flag", func() {
		ns := createNamespace()
		excluded := []string{metav1.NamespaceSystem, operatorNamespace, "excluded-by-flag"}
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "excluded-by-flag"}})).To(
			Or(Succeed(), WithTransform(apierrors.IsAlreadyExists, BeTrue())))
		p := replicasPolicy(append([]string{ns}, excluded...))
		waitUntilEnforced(p, deployment(ns, "web", 5))

		for _, namespace := range excluded {
			Expect(k8sClient.Create(ctx, deployment(namespace, uniqueName("web"), 5), client.DryRunAll)).To(
				Succeed(), "namespace %s", namespace)
		}
	})

	It("does not enforce requests of the operator's ServiceAccount", func() {
		ns := createNamespace()
		p := replicasPolicy([]string{ns})
		waitUntilEnforced(p, deployment(ns, "web", 5))

		username := options.OperatorUsername()
		mustCreate(&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("operator-test")},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: username}},
		})
		impersonating := rest.CopyConfig(restConfig)
		impersonating.Impersonate = rest.ImpersonationConfig{UserName: username}
		operatorClient, err := client.New(impersonating, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error {
			return operatorClient.Create(ctx, deployment(ns, "web", 5), client.DryRunAll)
		}).Should(Succeed())
	})
})

// weaveReplicaCountPolicy is a policy as the Weave policy library writes
// them: v2beta2, Rego v0 with partial set rules and future keywords. The
// name and the target namespace are filled in.
const weaveReplicaCountPolicy = `apiVersion: pac.weave.works/v2beta2
kind: Policy
metadata:
  name: %[1]s
spec:
  id: %[1]s
  name: Containers Minimum Replica Count
  enabled: true
  description: "Use this control to validate that a workload runs with at least a minimum number of replicas."
  how_to_solve: "Set spec.replicas to at least the replica_count parameter."
  category: weave.categories.reliability
  severity: medium
  targets:
    kinds:
    - Deployment
    - StatefulSet
    namespaces:
    - %[2]s
  parameters:
  - name: replica_count
    type: integer
    required: true
    value: 2
  - name: exclude_namespaces
    type: array
    required: false
    value: []
  - name: exclude_label_key
    type: string
    required: false
    value: ""
  - name: exclude_label_value
    type: string
    required: false
    value: ""
  code: |
    package weave.advisor.pods.replica_count

    import future.keywords.in

    min_replica_count := input.parameters.replica_count
    exclude_namespaces := input.parameters.exclude_namespaces
    exclude_label_key := input.parameters.exclude_label_key
    exclude_label_value := input.parameters.exclude_label_value

    controller_input := input.review.object

    violation[result] {
      isExcludedNamespace == false
      not exclude_label_value == controller_input.metadata.labels[exclude_label_key]
      not replicas >= min_replica_count
      result = {
        "issue detected": true,
        "msg": sprintf("Replica count must be greater than or equal to '%%v'; found '%%v'.", [min_replica_count, replicas]),
        "violating_key": "spec.replicas",
        "recommended_value": min_replica_count
      }
    }

    replicas := controller_input.spec.replicas {
      controller_input.kind in {"Deployment", "StatefulSet"}
    }

    isExcludedNamespace = true {
      controller_input.metadata.namespace
      controller_input.metadata.namespace in exclude_namespaces
    } else = false
`

// counterValue returns the value of a counter.
func counterValue(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	Expect(c.Write(m)).To(Succeed())
	return m.GetCounter().GetValue()
}
