package pac

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// writeManifest writes the manifest to a file that lives until the spec
// ends and returns its path.
func writeManifest(manifest string) string {
	path := filepath.Join(GinkgoT().TempDir(), "manifest.yaml")
	Expect(os.WriteFile(path, []byte(manifest), 0o600)).To(Succeed())
	return path
}

// runKubectl runs kubectl and returns its combined output.
func runKubectl(args ...string) (string, error) {
	stdout, stderr, err := kubectl.Run(args...)
	out, _ := io.ReadAll(stdout)
	errOut, _ := io.ReadAll(stderr)
	return string(out) + string(errOut), err
}

// deleteWithKubectl deletes the objects of the manifest file.
func deleteWithKubectl(path string) {
	out, err := runKubectl("delete", "--ignore-not-found", "-f", path)
	Expect(err).NotTo(HaveOccurred(), out)
}

const libraryPolicyManifest = `apiVersion: pac.weave.works/v2beta2
kind: Policy
metadata:
  name: %[1]s
spec:
  id: %[1]s
  name: Containers Running With Privilege Escalation
  enabled: false
  severity: high
  category: weave.categories.pod-security
  parameters:
    - name: allow_privilege_escalation
      type: boolean
      required: true
      value: false
  code: |
    package weave.advisor.podsecurity.privilege_escalation

    import future.keywords.in

    allowed := input.parameters.allow_privilege_escalation

    violation[result] {
      some container in input.review.object.spec.template.spec.containers
      container.securityContext.allowPrivilegeEscalation != allowed
      result := {
        "msg": sprintf("container %%s sets allowPrivilegeEscalation", [container.name]),
        "violating_key": "spec.template.spec.containers",
      }
    }
%[2]s`

var _ = Describe("Policy webhook", func() {
	It("admits a v2beta2 library policy through kubectl apply", func() {
		name := "weave.policies.privilege-escalation-" + rand.String(5)
		path := writeManifest(fmt.Sprintf(libraryPolicyManifest, name, ""))
		DeferCleanup(deleteWithKubectl, path)

		out, err := runKubectl("apply", "-f", path)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("created"))
	})

	It("denies kubectl apply of Rego that does not compile, naming the line", func() {
		name := "broken-" + rand.String(5)
		// The appended line 15 of the module does not parse.
		path := writeManifest(fmt.Sprintf(libraryPolicyManifest, name, "    violation[x] { x := }\n"))
		DeferCleanup(deleteWithKubectl, path)

		out, err := runKubectl("apply", "-f", path)
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring(`The Policy "` + name + `" is invalid: ` +
			"spec.code: Invalid value: Rego does not compile: rego v0: line 15, column 21: rego_parse_error"))
	})

	It("denies a default value that does not match its type", func() {
		name := "typed-" + rand.String(5)
		p := &pacv2beta3.Policy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: pacv2beta3.PolicySpec{
				Name:     "Typed",
				Severity: "low",
				Code:     "package t\nviolation contains \"x\" if false\n",
				Parameters: []pacv2beta3.PolicyParameters{{
					Name:  "limit",
					Type:  "integer",
					Value: &apiextensionsv1.JSON{Raw: []byte(`"ten"`)},
				}},
			},
		}
		err := k8sClient.Create(ctx, p)
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed()) })
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`spec.parameters[0].value: Invalid value: default of parameter "limit": value "ten" is not of type integer`))
	})
})

var _ = Describe("PolicyConfig webhook", func() {
	It("denies a PolicyConfig that overlaps another for the same parameter", func() {
		policyID := "limits-" + rand.String(5)
		newConfig := func(name string, namespaces ...string) *pacv2beta3.PolicyConfig {
			return &pacv2beta3.PolicyConfig{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: pacv2beta3.PolicyConfigSpec{
					Match: pacv2beta3.PolicyConfigTarget{Namespaces: namespaces},
					Config: map[string]pacv2beta3.PolicyConfigConfig{policyID: {
						Parameters: map[string]apiextensionsv1.JSON{"max": {Raw: []byte("3")}},
					}},
				},
			}
		}
		first := newConfig("first-"+rand.String(5), "team-a", "team-b")
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, first))).To(Succeed()) })

		second := newConfig("second-"+rand.String(5), "team-c", "team-b")
		err := k8sClient.Create(ctx, second)
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, second))).To(Succeed()) })
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`spec.match.namespaces[1]: Invalid value: "team-b": PolicyConfig ` +
			first.Name + ` also targets team-b and sets ` + policyID + `.max`))

		third := newConfig("third-"+rand.String(5), "team-c")
		Expect(k8sClient.Create(ctx, third)).To(Succeed(), "a config for other namespaces is admitted")
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, third))).To(Succeed()) })
	})
})
