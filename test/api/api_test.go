package api_test

import (
	"fmt"
	"math/rand/v2"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// uniqueName returns prefix with a random suffix, so that specs never share
// cluster-scoped objects.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%06d", prefix, rand.IntN(1_000_000))
}

func newPolicy(name string) *pacv2beta3.Policy {
	return &pacv2beta3.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pacv2beta3.PolicySpec{
			Name:     "No latest tag",
			Severity: pacv2beta3.SeverityMedium,
			Category: "td.categories.images",
			Targets:  pacv2beta3.PolicyTargets{Kinds: []string{"Deployment"}},
			Code:     "package td.test\n\nviolation contains {\"msg\": \"x\"} if false\n",
		},
	}
}

// expectInvalid asserts that err is an Invalid error whose message contains
// every fragment.
func expectInvalid(err error, fragments ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected an Invalid error, got %v", err)
	for _, fragment := range fragments {
		Expect(err.Error()).To(ContainSubstring(fragment))
	}
}

var _ = Describe("Policy", func() {
	It("is created, read and deleted with defaults applied", func() {
		policy := newPolicy(uniqueName("td.test.policy"))
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())

		var got pacv2beta3.Policy
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), &got)).To(Succeed())
		Expect(got.Spec.Enforce).To(Equal(ptr.To(true)), "enforce defaults to true")
		Expect(got.Spec.Provider).To(Equal(pacv2beta3.ProviderKubernetes))

		got.Status.ObservedGeneration = got.Generation
		got.Status.Modes = []string{pacv2beta3.ModeAdmission}
		Expect(k8sClient.Status().Update(ctx, &got)).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), &got)).To(Succeed())
		Expect(got.Status.Modes).To(ConsistOf(pacv2beta3.ModeAdmission))

		Expect(k8sClient.Delete(ctx, policy)).To(Succeed())
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), &got)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})

	It("rejects an unknown severity", func() {
		policy := newPolicy(uniqueName("td.test.severity"))
		policy.Spec.Severity = "critical"
		expectInvalid(k8sClient.Create(ctx, policy), "spec.severity", "critical")
	})

	It("rejects a spec.id that differs from metadata.name", func() {
		policy := newPolicy(uniqueName("td.test.id"))
		policy.Spec.ID = "td.test.other"
		expectInvalid(k8sClient.Create(ctx, policy), "spec.id must be equal to metadata.name")
	})

	It("rejects an unknown parameter type", func() {
		policy := newPolicy(uniqueName("td.test.param"))
		policy.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "replicas", Type: "float"}}
		expectInvalid(k8sClient.Create(ctx, policy), "spec.parameters[0].type")
	})

	It("applies a Weave v2beta2 manifest unchanged and reads it back as v2beta3", func() {
		name := uniqueName("weave.policies.containers-running-as-root")
		manifest := strings.ReplaceAll(weaveV2beta2Policy, "NAME", name)
		obj := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(manifest), &obj.Object)).To(Succeed())
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())

		readBack := &unstructured.Unstructured{}
		readBack.SetGroupVersionKind(pacv2beta3.GroupVersion.WithKind("Policy"))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, readBack)).To(Succeed())
		Expect(readBack.GetAPIVersion()).To(Equal("pac.weave.works/v2beta3"))

		var got pacv2beta3.Policy
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, &got)).To(Succeed())
		Expect(got.Spec.ID).To(Equal(name))
		Expect(got.Spec.Enabled).To(Equal(ptr.To(false)), "enabled is kept, and ignored")
		Expect(got.Spec.Enforce).To(Equal(ptr.To(true)))
		Expect(got.Spec.HowToSolve).To(ContainSubstring("runAsNonRoot"))
		Expect(got.Spec.Code).To(ContainSubstring("violation[result]"))
		Expect(got.Spec.Standards).To(HaveLen(1))
		Expect(got.Spec.Standards[0].Controls).To(ConsistOf("weave.controls.cis-benchmark.5.2.6"))
		Expect(got.Spec.Parameters).To(HaveLen(2))
		Expect(got.Spec.Parameters[0].Value).To(BeNil(), "a null default stays null")

		var old pacv2beta2.Policy
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, &old)).To(Succeed())
		Expect(old.Spec.Severity).To(Equal("high"))
		Expect(k8sClient.Delete(ctx, &got)).To(Succeed())
	})
})

var _ = Describe("PolicySet", func() {
	It("is created, read and deleted", func() {
		set := &pacv2beta2.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("baseline")},
			Spec: pacv2beta2.PolicySetSpec{
				Mode:    pacv2beta3.ModeAudit,
				Filters: pacv2beta2.PolicySetFilters{Tags: []string{"baseline"}, Severities: []string{"high"}},
			},
		}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		var got pacv2beta2.PolicySet
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), &got)).To(Succeed())
		Expect(got.Spec.Filters.Tags).To(ConsistOf("baseline"))
		Expect(k8sClient.Delete(ctx, set)).To(Succeed())
	})

	It("rejects an unknown mode", func() {
		set := &pacv2beta2.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("bad-mode")},
			Spec:       pacv2beta2.PolicySetSpec{Mode: "mutation"},
		}
		expectInvalid(k8sClient.Create(ctx, set), "spec.mode")
	})
})

var _ = Describe("PolicyConfig", func() {
	newConfig := func(match pacv2beta3.PolicyConfigTarget) *pacv2beta3.PolicyConfig {
		return &pacv2beta3.PolicyConfig{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("config")},
			Spec: pacv2beta3.PolicyConfigSpec{
				Match: match,
				Config: map[string]pacv2beta3.PolicyConfigConfig{
					"td.baseline.replica-count": {Parameters: map[string]apiextensionsv1.JSON{
						"replica_count": {Raw: []byte("3")},
					}},
				},
			},
		}
	}

	It("is created, read and deleted", func() {
		config := newConfig(pacv2beta3.PolicyConfigTarget{Namespaces: []string{"team-a"}})
		Expect(k8sClient.Create(ctx, config)).To(Succeed())
		var got pacv2beta3.PolicyConfig
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(config), &got)).To(Succeed())
		Expect(string(got.Spec.Config["td.baseline.replica-count"].Parameters["replica_count"].Raw)).To(Equal("3"))
		Expect(k8sClient.Delete(ctx, config)).To(Succeed())
	})

	It("rejects two match types", func() {
		config := newConfig(pacv2beta3.PolicyConfigTarget{
			Namespaces: []string{"team-a"},
			Workspaces: []string{"team-a"},
		})
		expectInvalid(k8sClient.Create(ctx, config), "exactly one of workspaces, namespaces, apps or resources")
	})

	It("rejects no match type", func() {
		config := newConfig(pacv2beta3.PolicyConfigTarget{})
		expectInvalid(k8sClient.Create(ctx, config), "exactly one of workspaces, namespaces, apps or resources")
	})

	It("rejects an app of an unknown kind", func() {
		config := newConfig(pacv2beta3.PolicyConfigTarget{
			Applications: []pacv2beta3.PolicyTargetApplication{{Kind: "Application", Name: "web"}},
		})
		expectInvalid(k8sClient.Create(ctx, config), "spec.match.apps[0].kind")
	})
})

var _ = Describe("Workspace", func() {
	newWorkspace := func(namespaces ...string) *tenancyv1alpha1.Workspace {
		return &tenancyv1alpha1.Workspace{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("team")},
			Spec: tenancyv1alpha1.WorkspaceSpec{
				Namespaces: namespaces,
				Labels:     map[string]tenancyv1alpha1.LabelValue{"example.com/team": "payments"},
				AllowedRepositories: []tenancyv1alpha1.AllowedRepository{
					{Kind: "GitRepository", URL: "https://github.com/example/payments"},
				},
				TeamRBAC: &tenancyv1alpha1.TeamRBAC{Groups: []string{"payments"}, ClusterRole: "edit"},
			},
		}
	}

	It("is created, read and deleted with defaults applied", func() {
		workspace := newWorkspace("payments", "payments-staging")
		Expect(k8sClient.Create(ctx, workspace)).To(Succeed())
		var got tenancyv1alpha1.Workspace
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(workspace), &got)).To(Succeed())
		Expect(got.Spec.DeletionPolicy).To(Equal(tenancyv1alpha1.DeletionPolicyOrphan))
		Expect(got.Spec.AllowedRepositories[0].Match).To(Equal(tenancyv1alpha1.MatchExact))
		Expect(got.ServiceAccount()).To(Equal(got.Name))
		Expect(k8sClient.Delete(ctx, workspace)).To(Succeed())
	})

	It("rejects a namespace name that is not a DNS-1123 label", func() {
		workspace := newWorkspace("Payments_Prod")
		expectInvalid(k8sClient.Create(ctx, workspace), "spec.namespaces[0]")
	})

	It("rejects a label value longer than 63 characters", func() {
		workspace := newWorkspace("payments")
		workspace.Spec.Labels = map[string]tenancyv1alpha1.LabelValue{"team": tenancyv1alpha1.LabelValue(strings.Repeat("a", 64))}
		expectInvalid(k8sClient.Create(ctx, workspace), "spec.labels.team", "63")
	})

	It("rejects an invalid label key", func() {
		workspace := newWorkspace("payments")
		workspace.Spec.Labels = map[string]tenancyv1alpha1.LabelValue{"bad key!": "x"}
		expectInvalid(k8sClient.Create(ctx, workspace), "spec.labels", "qualified names")
	})

	It("rejects a name that cannot be a label value", func() {
		workspace := newWorkspace("payments")
		workspace.Name = "team." + strings.Repeat("a", 60)
		expectInvalid(k8sClient.Create(ctx, workspace), "DNS-1123 label")
	})

	It("rejects an unknown deletion policy", func() {
		workspace := newWorkspace("payments")
		workspace.Spec.DeletionPolicy = "Purge"
		expectInvalid(k8sClient.Create(ctx, workspace), "spec.deletionPolicy")
	})

	It("rejects team RBAC without groups or users", func() {
		workspace := newWorkspace("payments")
		workspace.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{ClusterRole: "view"}
		expectInvalid(k8sClient.Create(ctx, workspace), "at least one of groups or users")
	})

	It("rejects an unknown repository kind", func() {
		workspace := newWorkspace("payments")
		workspace.Spec.AllowedRepositories = []tenancyv1alpha1.AllowedRepository{{Kind: "Git", URL: "https://x"}}
		expectInvalid(k8sClient.Create(ctx, workspace), "spec.allowedRepositories[0].kind")
	})
})

// weaveV2beta2Policy is a policy in the form the Weave GitOps policy library
// ships: v2beta2, enabled false, null parameter values and Rego v0 syntax.
// NAME is replaced by the test.
const weaveV2beta2Policy = `
apiVersion: pac.weave.works/v2beta2
kind: Policy
metadata:
  name: NAME
  labels:
    toolkit.fluxcd.io/name: policies
spec:
  id: NAME
  name: Containers Running As Root
  enabled: false
  description: Containers that run as root can take over the node when they escape.
  how_to_solve: |
    Set securityContext.runAsNonRoot to true in the pod or in each container.
  category: weave.categories.pod-security
  severity: high
  standards:
    - id: weave.standards.cis-benchmark
      controls:
        - weave.controls.cis-benchmark.5.2.6
  tags: [cis-benchmark]
  targets:
    kinds: [Deployment, StatefulSet, DaemonSet]
  parameters:
    - name: exclude_namespaces
      type: array
      required: false
      value:
    - name: exclude_label_key
      type: string
      required: false
      value: ""
  code: |
    package weave.advisor.podSecurity.runningAsRoot

    import future.keywords.in

    pod_spec := input.review.object.spec.template.spec

    violation[result] {
      container := pod_spec.containers[i]
      not container.securityContext.runAsNonRoot
      result = {
        "issue detected": true,
        "msg": sprintf("container %v may run as root", [container.name]),
        "violating_key": sprintf("spec.template.spec.containers[%v].securityContext.runAsNonRoot", [i]),
        "recommended_value": true
      }
    }
`
