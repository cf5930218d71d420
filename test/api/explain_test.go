package api_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/trusted-delivery/trusted-delivery/internal/testenv"
)

// undocumentedFields returns the paths under schema that have no description.
func undocumentedFields(path string, schema apiextensionsv1.JSONSchemaProps) []string {
	var missing []string
	if schema.Description == "" {
		missing = append(missing, path)
	}
	for name, child := range schema.Properties {
		missing = append(missing, undocumentedFields(path+"."+name, child)...)
	}
	if schema.Items != nil && schema.Items.Schema != nil {
		for name, child := range schema.Items.Schema.Properties {
			missing = append(missing, undocumentedFields(path+"[]."+name, child)...)
		}
	}
	return missing
}

var _ = Describe("CRD documentation", func() {
	It("describes every spec field of every kind", func() {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(4))
		for _, file := range files {
			data, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			var crd apiextensionsv1.CustomResourceDefinition
			Expect(yaml.Unmarshal(data, &crd)).To(Succeed())
			for _, version := range crd.Spec.Versions {
				schema := version.Schema.OpenAPIV3Schema
				Expect(schema.Description).NotTo(BeEmpty(), "%s %s has no description", crd.Name, version.Name)
				missing := undocumentedFields("spec", schema.Properties["spec"])
				sort.Strings(missing)
				Expect(missing).To(BeEmpty(), "%s %s", crd.Name, version.Name)
			}
		}
	})

	It("lets kubectl explain every Workspace spec field", func() {
		kubectl := env.ControlPlane.KubeCtl()
		// The API server publishes a new CRD's OpenAPI schema a moment after
		// the CRD is established, so explain may fail at first.
		var out string
		Eventually(func(g Gomega) {
			stdout, stderr, err := kubectl.Run("explain", "workspaces.spec")
			g.Expect(err).NotTo(HaveOccurred(), readAll(stderr))
			out = readAll(stdout)
		}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
		for _, field := range []string{
			"namespaces", "serviceAccountName", "labels", "deploymentRBAC", "teamRBAC",
			"allowedRepositories", "allowedClusters", "deletionPolicy", "resourceQuota", "limitRange",
		} {
			Expect(out).To(ContainSubstring(field))
		}
		Expect(out).To(ContainSubstring("Flux to impersonate"))
	})
})

func readAll(r interface{ Read([]byte) (int, error) }) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
