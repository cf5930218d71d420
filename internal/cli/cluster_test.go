package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
)

// tenantsFile returns a tenants file with one tenant of the name and its
// namespaces.
func tenantsFile(name string, namespaces ...string) string {
	return fmt.Sprintf("tenants:\n  - name: %s\n    namespaces: [%s]\n", name, strings.Join(namespaces, ", "))
}

var _ = Describe("create tenants", func() {
	It("applies Workspaces and reports created, unchanged and configured", func() {
		name := uniqueName("apply")
		file := writeScratchFile("tenants.yaml", tenantsFile(name, name+"-apps"))

		got := runCluster("", "create", "tenants", "-f", file)
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).To(Equal(fmt.Sprintf("workspace.tenancy.weave.works/%s created\n", name)))

		ws := &tenancyv1alpha1.Workspace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		Expect(ws.Spec.Namespaces).To(Equal([]string{name + "-apps"}))
		Expect(ws.ManagedFields).To(ContainElement(And(
			HaveField("Manager", tenantsFieldManager),
			HaveField("Operation", metav1.ManagedFieldsOperationApply),
		)), "applied with server-side apply by tdctl")
		expectWorkspaceReady(name)

		got = runCluster("", "create", "tenants", "-f", file)
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).To(Equal(fmt.Sprintf("workspace.tenancy.weave.works/%s unchanged\n", name)))

		Expect(os.WriteFile(file, []byte(tenantsFile(name, name+"-apps", name+"-jobs")), 0o644)).To(Succeed())
		got = runCluster("", "create", "tenants", "-f", file)
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).To(Equal(fmt.Sprintf("workspace.tenancy.weave.works/%s configured\n", name)))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		Expect(ws.Spec.Namespaces).To(Equal([]string{name + "-apps", name + "-jobs"}))
	})

	It("never deletes a Workspace that the file no longer lists", func() {
		kept, dropped := uniqueName("kept"), uniqueName("dropped")
		file := writeScratchFile("tenants.yaml", tenantsFile(kept, kept)+"  - name: "+dropped+"\n    namespaces: ["+dropped+"]\n")
		Expect(runCluster("", "create", "tenants", "-f", file).code).To(Equal(ExitOK))

		Expect(os.WriteFile(file, []byte(tenantsFile(kept, kept)), 0o644)).To(Succeed())
		got := runCluster("", "create", "tenants", "-f", file)
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).NotTo(ContainSubstring(dropped))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: dropped}, &tenancyv1alpha1.Workspace{})).To(Succeed())
	})

	It("shows a diff on --dry-run and writes nothing", func() {
		name := uniqueName("dry-run")
		file := writeScratchFile("tenants.yaml", tenantsFile(name, name+"-apps"))

		got := runCluster("", "create", "tenants", "-f", file, "--dry-run")
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).To(HavePrefix(fmt.Sprintf("workspace.tenancy.weave.works/%s created (server dry run)\n", name)))
		Expect(got.stdout).To(ContainSubstring("--- live/" + name))
		Expect(got.stdout).To(ContainSubstring("+++ applied/" + name))
		Expect(got.stdout).To(ContainSubstring("+  - " + name + "-apps"))
		Expect(got.stdout).To(ContainSubstring("+  deletionPolicy: Orphan"), "the diff shows the defaults the API server adds")
		err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, &tenancyv1alpha1.Workspace{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the dry run created nothing: %v", err)

		Expect(runCluster("", "create", "tenants", "-f", file).code).To(Equal(ExitOK))
		expectWorkspaceReady(name)
		Expect(os.WriteFile(file, []byte(tenantsFile(name, name+"-web")), 0o644)).To(Succeed())
		got = runCluster("", "create", "tenants", "-f", file, "--dry-run")
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		Expect(got.stdout).To(HavePrefix(fmt.Sprintf("workspace.tenancy.weave.works/%s configured (server dry run)\n", name)))
		Expect(got.stdout).To(ContainSubstring("-  - " + name + "-apps"))
		Expect(got.stdout).To(ContainSubstring("+  - " + name + "-web"))
		ws := &tenancyv1alpha1.Workspace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		Expect(ws.Spec.Namespaces).To(Equal([]string{name + "-apps"}), "the dry run changed nothing")

		Expect(os.WriteFile(file, []byte(tenantsFile(name, name+"-apps")), 0o644)).To(Succeed())
		got = runCluster("", "create", "tenants", "-f", file, "--dry-run")
		Expect(got.stdout).To(Equal(fmt.Sprintf("workspace.tenancy.weave.works/%s unchanged (server dry run)\n", name)))
	})

	It("fails on a field that another field manager owns unless forced", func() {
		name := uniqueName("conflict")
		file := writeScratchFile("tenants.yaml", tenantsFile(name, name)+"    labels:\n      team: a\n")
		Expect(runCluster("", "create", "tenants", "-f", file).code).To(Equal(ExitOK))

		By("changing the label with another field manager")
		Eventually(func(g Gomega) {
			ws := &tenancyv1alpha1.Workspace{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
			ws.Spec.Labels["team"] = "b"
			g.Expect(k8sClient.Update(ctx, ws, client.FieldOwner("someone-else"))).To(Succeed())
		}).Should(Succeed())

		got := runCluster("", "create", "tenants", "-f", file)
		Expect(got.code).To(Equal(ExitViolations))
		Expect(got.stderr).To(ContainSubstring("apply Workspace " + name))
		Expect(got.stderr).To(ContainSubstring("--force-conflicts"))

		got = runCluster("", "create", "tenants", "-f", file, "--force-conflicts")
		Expect(got.code).To(Equal(ExitOK), got.stderr)
		ws := &tenancyv1alpha1.Workspace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, ws)).To(Succeed())
		Expect(ws.Spec.Labels).To(HaveKeyWithValue("team", tenancyv1alpha1.LabelValue("a")))
	})

	It("exports Workspaces that the operator turns into exactly the exported resources", func() {
		workspaces := runCLI(GinkgoT(), "", "create", "tenants", "-f", weaveTenantsFile, "--export")
		Expect(workspaces.code).To(Equal(ExitOK), workspaces.stderr)
		resources := runCLI(GinkgoT(), "", "create", "tenants", "-f", weaveTenantsFile, "--export", "--output", "resources")
		Expect(resources.code).To(Equal(ExitOK), resources.stderr)

		By("applying the exported Workspaces")
		var names []string
		for _, ws := range parseObjects("workspaces", workspaces.stdout) {
			Expect(k8sClient.Create(ctx, ws)).To(Succeed())
			names = append(names, ws.GetName())
		}
		for _, name := range names {
			expectWorkspaceReady(name)
		}

		By("comparing the objects in the cluster with the exported resources")
		exported := parseObjects("resources", resources.stdout)
		Expect(exported).NotTo(BeEmpty())
		kinds := map[schema.GroupVersionKind][]string{}
		for _, want := range exported {
			gvk := want.GroupVersionKind()
			kinds[gvk] = append(kinds[gvk], objectName(want))
			Eventually(func(g Gomega) {
				live := &unstructured.Unstructured{}
				live.SetGroupVersionKind(gvk)
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(want), live)).To(Succeed())
				for field, value := range want.Object {
					if field == "apiVersion" || field == "kind" {
						continue
					}
					expectContains(g, live.Object[field], value, gvk.Kind+" "+objectName(want)+"."+field)
				}
			}).Should(Succeed(), "%s %s matches the export", gvk.Kind, objectName(want))
		}

		By("checking that the operator created no other objects for these Workspaces")
		selector := client.MatchingLabelsSelector{Selector: workspaceSelector(names)}
		for gvk, wantNames := range kinds {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			Expect(k8sClient.List(ctx, list, selector)).To(Succeed())
			var liveNames []string
			for i := range list.Items {
				liveNames = append(liveNames, objectName(&list.Items[i]))
			}
			Expect(liveNames).To(ConsistOf(wantNames), "%s objects of the Workspaces", gvk.Kind)
		}
	})
})

var _ = Describe("validate --from-cluster", func() {
	It("reads Policies, PolicySets, PolicyConfigs and namespace labels from the cluster", func() {
		fixture, err := filepath.Abs(fixtureRepository)
		Expect(err).NotTo(HaveOccurred())
		createFixturePolicies(filepath.Join(fixture, "policies"))

		By("checking the fixture repository against the cluster's policies")
		got := runCluster("", "validate", "--from-cluster", "-o", "json", fixture)
		Expect(got.code).To(Equal(ExitViolations), got.stderr)
		report := decodeJSONReport(got.stdout)
		Expect(report.Summary.Policies).To(Equal(3), "the audit PolicySet selects three policies")
		var found []string
		for _, r := range report.Results {
			rel, err := filepath.Rel(fixture, r.File)
			Expect(err).NotTo(HaveOccurred())
			found = append(found, rel+" "+r.Object.Name+" "+r.Policy.ID+" "+r.Status)
		}
		Expect(found).To(ConsistOf(
			"kustomize/base/deployment.yaml prod-backend fixtures.replica-count fail",
			"manifests/frontend.yaml frontend fixtures.owner-label warn",
			"manifests/frontend.yaml frontend fixtures.replica-count fail",
			"manifests/frontend.yaml frontend fixtures.run-as-non-root fail",
			"manifests/multi.yaml api fixtures.owner-label warn",
		))

		By("using the labels of a namespace that only the cluster has")
		tenant := uniqueName("tenant")
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   tenant,
			Labels: map[string]string{tenancyv1alpha1.TenantLabel: tenant},
		}})).To(Succeed())
		config := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "pac.weave.works/v2beta3",
			"kind":       "PolicyConfig",
			"metadata":   map[string]any{"name": tenant},
			"spec": map[string]any{
				"match": map[string]any{"workspaces": []any{tenant}},
				"config": map[string]any{"fixtures.replica-count": map[string]any{
					"parameters": map[string]any{"replica_count": int64(5)},
				}},
			},
		}}
		Expect(k8sClient.Create(ctx, config)).To(Succeed())
		deployment := fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: %s\n  labels:\n    owner: me\n"+
			"spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: app\n        image: app:1\n"+
			"        securityContext:\n          runAsNonRoot: true\n", tenant)
		got = runCluster(deployment, "validate", "--from-cluster", "-o", "json", "-")
		Expect(got.code).To(Equal(ExitViolations), got.stderr)
		report = decodeJSONReport(got.stdout)
		Expect(report.Results).To(HaveLen(1))
		Expect(report.Results[0].Occurrences[0].Message).To(Equal("Replica count must be at least 5; found 3"))

		By("letting policy files replace the cluster's")
		got = runCluster(deployment, "validate", "--from-cluster", "--policies", filepath.Join(fixture, "policies"), "-o", "json", "-")
		Expect(got.code).To(Equal(ExitViolations), got.stderr)
		Expect(got.stderr).To(ContainSubstring("note: Policy fixtures.replica-count from " +
			filepath.Join(fixture, "policies", "replica-count.yaml") + ":2 replaces the one in the cluster"))
	})
})

// workspaceSelector selects the objects of the Workspaces.
func workspaceSelector(names []string) labels.Selector {
	selector, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key:      tenancyv1alpha1.WorkspaceLabel,
			Operator: metav1.LabelSelectorOpIn,
			Values:   names,
		}},
	})
	Expect(err).NotTo(HaveOccurred())
	return selector
}

// createFixturePolicies creates every document of the policy files in dir.
func createFixturePolicies(dir string) {
	entries, err := os.ReadDir(dir)
	Expect(err).NotTo(HaveOccurred())
	for _, entry := range entries {
		data, err := os.ReadFile(filepath.Join(dir, entry.Name()))
		Expect(err).NotTo(HaveOccurred())
		docs, err := yamldoc.Parse(entry.Name(), data)
		Expect(err).NotTo(HaveOccurred())
		for _, doc := range docs {
			obj := &unstructured.Unstructured{Object: doc.Object.(map[string]any)}
			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), "create %s %s", obj.GetKind(), obj.GetName())
		}
	}
}

func decodeJSONReport(data string) jsonReport {
	var report jsonReport
	Expect(json.Unmarshal([]byte(data), &report)).To(Succeed())
	return report
}
