package tenancy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// PolicyTag is in spec.tags of every tenancy policy, so that PolicySets
// can select them.
const PolicyTag = "tenancy"

// policyCategory is spec.category of every tenancy policy.
const policyCategory = "tenancy"

// Suffixes of the tenancy policy IDs, which are tenancy.<workspace>.<suffix>.
const (
	AllowedRepositoriesPolicy         = "allowed-repositories"
	AllowedClustersPolicy             = "allowed-clusters"
	ServiceAccountAndNamespacesPolicy = "service-account-and-namespaces"
)

var (
	//go:embed rego/allowed_repositories.rego
	allowedRepositoriesCode string
	//go:embed rego/allowed_clusters.rego
	allowedClustersCode string
	//go:embed rego/service_account_and_namespaces.rego
	serviceAccountAndNamespacesCode string
)

// Kinds that the tenancy policies check.
var (
	sourceKinds   = []string{"Bucket", "GitRepository", "HelmRepository", "OCIRepository"}
	deployerKinds = []string{"HelmRelease", "Kustomization"}
)

// PolicyID returns the ID (metadata.name) of the tenancy policy of the
// Workspace wsName with the suffix, for example
// tenancy.team-a.allowed-repositories.
func PolicyID(wsName, suffix string) string {
	return "tenancy." + wsName + "." + suffix
}

// policies returns the tenancy policies of ws, which check Flux objects in
// namespaces. The allowed-repositories policy exists only when
// spec.allowedRepositories is not empty, because an empty list allows every
// source.
func policies(ws *tenancyv1alpha1.Workspace, namespaces []string) []client.Object {
	var objects []client.Object
	if len(ws.Spec.AllowedRepositories) > 0 {
		objects = append(objects, allowedRepositoriesPolicy(ws, namespaces))
	}
	objects = append(objects,
		allowedClustersPolicy(ws, namespaces),
		serviceAccountAndNamespacesPolicy(ws, namespaces))
	return objects
}

func allowedRepositoriesPolicy(ws *tenancyv1alpha1.Workspace, namespaces []string) *pacv2beta3.Policy {
	allowed := make([]map[string]string, 0, len(ws.Spec.AllowedRepositories))
	for _, repository := range ws.Spec.AllowedRepositories {
		allowed = append(allowed, map[string]string{
			"kind":  repository.Kind,
			"url":   repository.URL,
			"match": valueOr(repository.Match, tenancyv1alpha1.MatchExact),
		})
	}
	p := newPolicy(ws, AllowedRepositoriesPolicy, namespaces, sourceKinds, allowedRepositoriesCode)
	p.Spec.Name = "Allowed repositories of workspace " + ws.Name
	p.Spec.Description = "Flux sources (GitRepository, OCIRepository, HelmRepository, Bucket) in the " +
		"namespaces of workspace " + ws.Name + " may fetch only from the URLs in its " +
		"spec.allowedRepositories. URLs are compared without scheme, user information, trailing " +
		"slashes and a trailing .git; a Prefix entry also allows the URLs below it."
	p.Spec.HowToSolve = "Use a source URL that spec.allowedRepositories of Workspace " + ws.Name +
		" allows, or ask a platform admin to add the URL there."
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		arrayParameter("allowed_repositories", allowed),
	}
	return p
}

func allowedClustersPolicy(ws *tenancyv1alpha1.Workspace, namespaces []string) *pacv2beta3.Policy {
	allowed := make([]map[string]string, 0, len(ws.Spec.AllowedClusters))
	for _, cluster := range ws.Spec.AllowedClusters {
		allowed = append(allowed, map[string]string{
			"kubeConfig": cluster.KubeConfig,
			"kind":       valueOr(cluster.Kind, "Secret"),
		})
	}
	p := newPolicy(ws, AllowedClustersPolicy, namespaces, deployerKinds, allowedClustersCode)
	p.Spec.Name = "Allowed clusters of workspace " + ws.Name
	p.Spec.Description = "Kustomizations and HelmReleases in the namespaces of workspace " + ws.Name +
		" may set spec.kubeConfig only to a Secret or ConfigMap in its spec.allowedClusters. " +
		"An empty list allows no remote cluster."
	p.Spec.HowToSolve = "Remove spec.kubeConfig to deploy to this cluster, or use a kubeconfig that " +
		"spec.allowedClusters of Workspace " + ws.Name + " lists."
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		arrayParameter("allowed_clusters", allowed),
	}
	return p
}

func serviceAccountAndNamespacesPolicy(ws *tenancyv1alpha1.Workspace, namespaces []string) *pacv2beta3.Policy {
	p := newPolicy(ws, ServiceAccountAndNamespacesPolicy, namespaces, deployerKinds, serviceAccountAndNamespacesCode)
	p.Spec.Name = "ServiceAccount and namespaces of workspace " + ws.Name
	// The namespaces are in the parameters only: listed here, up to 128 of
	// them could pass the 4096 characters that spec.description allows.
	p.Spec.Description = "Kustomizations and HelmReleases in the namespaces of workspace " + ws.Name +
		" must deploy as ServiceAccount " + ws.ServiceAccount() + " (an unset spec.serviceAccountName " +
		"is set by the operator) and may set spec.targetNamespace and spec.storageNamespace only to " +
		"the workspace's namespaces."
	p.Spec.HowToSolve = "Remove spec.serviceAccountName or set it to " + ws.ServiceAccount() +
		", and keep spec.targetNamespace and spec.storageNamespace within the namespaces of Workspace " +
		ws.Name + "."
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{
		{
			Name:     "service_account_name",
			Type:     pacv2beta3.ParameterTypeString,
			Value:    jsonValue(ws.ServiceAccount()),
			Required: true,
		},
		{
			Name:     "namespaces",
			Type:     pacv2beta3.ParameterTypeArray,
			Value:    jsonValue(slices.Clone(namespaces)),
			Required: true,
		},
	}
	return p
}

// newPolicy returns an enforced, high-severity tenancy policy of ws that
// targets kinds in namespaces.
func newPolicy(ws *tenancyv1alpha1.Workspace, suffix string, namespaces, kinds []string, code string) *pacv2beta3.Policy {
	return &pacv2beta3.Policy{
		TypeMeta:   metav1.TypeMeta{APIVersion: pacv2beta3.GroupVersion.String(), Kind: "Policy"},
		ObjectMeta: objectMeta(ws, "", PolicyID(ws.Name, suffix)),
		Spec: pacv2beta3.PolicySpec{
			Enforce:  ptr.To(true),
			Category: policyCategory,
			Tags:     []string{PolicyTag},
			Severity: pacv2beta3.SeverityHigh,
			Targets: pacv2beta3.PolicyTargets{
				Kinds:      slices.Clone(kinds),
				Namespaces: slices.Clone(namespaces),
			},
			Code:     code,
			Provider: pacv2beta3.ProviderKubernetes,
		},
	}
}

func arrayParameter(name string, value any) pacv2beta3.PolicyParameters {
	return pacv2beta3.PolicyParameters{
		Name:     name,
		Type:     pacv2beta3.ParameterTypeArray,
		Value:    jsonValue(value),
		Required: true,
	}
}

// jsonValue encodes value, which Generate builds from strings, lists and
// maps only, so encoding cannot fail.
func jsonValue(value any) *apiextensionsv1.JSON {
	data, err := json.Marshal(value)
	if err != nil {
		panic(fmt.Sprintf("encode policy parameter %v: %v", value, err))
	}
	return &apiextensionsv1.JSON{Raw: data}
}

func valueOr(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}
