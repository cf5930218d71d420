package tenancy

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// newTenancyEngine returns an engine with the tenancy policies of ws, and
// fails the test when one of them is not ready.
func newTenancyEngine(t *testing.T, ws *tenancyv1alpha1.Workspace) *policy.Engine {
	t.Helper()
	objects, err := Generate(ws, Options{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	engine := policy.NewEngine(policy.Options{})
	for _, obj := range objects {
		p, ok := obj.(*pacv2beta3.Policy)
		if !ok {
			continue
		}
		p.Generation = 1
		if status := engine.UpsertPolicy(p); !status.Ready {
			t.Fatalf("policy %s is not ready: %s: %s", p.Name, status.Reason, status.Message)
		}
	}
	return engine
}

// violations evaluates obj in audit mode and returns the violating keys by
// policy ID.
func violations(t *testing.T, engine *policy.Engine, obj *unstructured.Unstructured) map[string][]string {
	t.Helper()
	results := engine.Evaluate(context.Background(), policy.ModeAudit, policy.ReviewFromObject(obj),
		policy.Subject{Object: obj})
	found := map[string][]string{}
	for _, result := range results {
		if result.Err != nil {
			t.Fatalf("policy %s failed on %s: %v", result.PolicyID, obj.GetName(), result.Err)
		}
		for _, occurrence := range result.Occurrences {
			if occurrence.Message == "" {
				t.Errorf("policy %s: occurrence without a message", result.PolicyID)
			}
			found[result.PolicyID] = append(found[result.PolicyID], occurrence.ViolatingKey)
		}
	}
	return found
}

func fluxObject(apiVersion, kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}}
}

func gitRepository(namespace, url string) *unstructured.Unstructured {
	return fluxObject("source.toolkit.fluxcd.io/v1", "GitRepository", namespace, "app",
		map[string]any{"url": url, "interval": "1m"})
}

func kustomization(namespace string, spec map[string]any) *unstructured.Unstructured {
	spec["path"] = "./"
	spec["interval"] = "1m"
	spec["prune"] = true
	spec["sourceRef"] = map[string]any{"kind": "GitRepository", "name": "app"}
	return fluxObject("kustomize.toolkit.fluxcd.io/v1", "Kustomization", namespace, "app", spec)
}

func helmRelease(namespace string, spec map[string]any) *unstructured.Unstructured {
	spec["interval"] = "1m"
	spec["chartRef"] = map[string]any{"kind": "OCIRepository", "name": "app"}
	return fluxObject("helm.toolkit.fluxcd.io/v2", "HelmRelease", namespace, "app", spec)
}

func TestTenancyPolicies(t *testing.T) {
	engine := newTenancyEngine(t, fullWorkspace())
	repositories := PolicyID("team-b", AllowedRepositoriesPolicy)
	clusters := PolicyID("team-b", AllowedClustersPolicy)
	identity := PolicyID("team-b", ServiceAccountAndNamespacesPolicy)

	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		// want maps the violated policies to their violating keys; nil
		// means the object complies.
		want map[string][]string
	}{
		{
			name: "allowed GitRepository with another scheme",
			obj:  gitRepository("team-b-dev", "ssh://git@github.com/example/team-b"),
		},
		{
			name: "GitRepository from another repository",
			obj:  gitRepository("team-b-dev", "https://github.com/example/team-c"),
			want: map[string][]string{repositories: {"spec.url"}},
		},
		{
			name: "OCIRepository below an allowed prefix",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "OCIRepository", "team-b-prod", "app",
				map[string]any{"url": "oci://ghcr.io/example/team-b/manifests", "interval": "1m"}),
		},
		{
			name: "OCIRepository beside an allowed prefix",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "OCIRepository", "team-b-prod", "app",
				map[string]any{"url": "oci://ghcr.io/example/team-b-other", "interval": "1m"}),
			want: map[string][]string{repositories: {"spec.url"}},
		},
		{
			name: "allowed HelmRepository without trailing slash",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "HelmRepository", "team-b-dev", "charts",
				map[string]any{"url": "https://charts.example.com", "interval": "1m"}),
		},
		{
			name: "URL allowed only for another kind",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "HelmRepository", "team-b-dev", "charts",
				map[string]any{"url": "https://github.com/example/team-b", "interval": "1m"}),
			want: map[string][]string{repositories: {"spec.url"}},
		},
		{
			name: "allowed Bucket",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "Bucket", "team-b-dev", "artifacts",
				map[string]any{"endpoint": "s3.amazonaws.com", "bucketName": "team-b-artifacts", "interval": "1m"}),
		},
		{
			name: "Bucket with another bucket name",
			obj: fluxObject("source.toolkit.fluxcd.io/v1", "Bucket", "team-b-dev", "artifacts",
				map[string]any{"endpoint": "s3.amazonaws.com", "bucketName": "team-c-artifacts", "interval": "1m"}),
			want: map[string][]string{repositories: {"spec.endpoint"}},
		},
		{
			name: "source outside the workspace namespaces",
			obj:  gitRepository("team-c", "https://github.com/example/team-c"),
		},
		{
			name: "Kustomization without serviceAccountName",
			obj:  kustomization("team-b-dev", map[string]any{}),
		},
		{
			name: "Kustomization with the workspace ServiceAccount and namespace",
			obj:  kustomization("team-b-dev", map[string]any{"serviceAccountName": "deployer", "targetNamespace": "team-b-prod"}),
		},
		{
			name: "Kustomization with another ServiceAccount",
			obj:  kustomization("team-b-dev", map[string]any{"serviceAccountName": "default"}),
			want: map[string][]string{identity: {"spec.serviceAccountName"}},
		},
		{
			name: "Kustomization targeting another namespace",
			obj:  kustomization("team-b-dev", map[string]any{"targetNamespace": "kube-system"}),
			want: map[string][]string{identity: {"spec.targetNamespace"}},
		},
		{
			name: "HelmRelease storing its release elsewhere",
			obj:  helmRelease("team-b-prod", map[string]any{"storageNamespace": "flux-system", "targetNamespace": "team-b-dev"}),
			want: map[string][]string{identity: {"spec.storageNamespace"}},
		},
		{
			name: "Kustomization with an allowed kubeconfig Secret",
			obj: kustomization("team-b-dev", map[string]any{
				"kubeConfig": map[string]any{"secretRef": map[string]any{"name": "staging-kubeconfig"}},
			}),
		},
		{
			name: "Kustomization with an unknown kubeconfig Secret",
			obj: kustomization("team-b-dev", map[string]any{
				"kubeConfig": map[string]any{"secretRef": map[string]any{"name": "prod-kubeconfig"}},
			}),
			want: map[string][]string{clusters: {"spec.kubeConfig.secretRef.name"}},
		},
		{
			name: "HelmRelease with an allowed kubeconfig ConfigMap",
			obj: helmRelease("team-b-dev", map[string]any{
				"kubeConfig": map[string]any{"configMapRef": map[string]any{"name": "edge-kubeconfig"}},
			}),
		},
		{
			name: "ConfigMap name allowed only as a Secret",
			obj: helmRelease("team-b-dev", map[string]any{
				"kubeConfig": map[string]any{"configMapRef": map[string]any{"name": "staging-kubeconfig"}},
			}),
			want: map[string][]string{clusters: {"spec.kubeConfig.configMapRef.name"}},
		},
		{
			name: "Kustomization outside the workspace namespaces",
			obj:  kustomization("team-c", map[string]any{"serviceAccountName": "default", "targetNamespace": "kube-system"}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := violations(t, engine, tc.obj)
			if len(got) != len(tc.want) {
				t.Fatalf("violations = %v, want %v", got, tc.want)
			}
			for id, keys := range tc.want {
				if strings.Join(got[id], ",") != strings.Join(keys, ",") {
					t.Errorf("policy %s: violating keys = %v, want %v", id, got[id], keys)
				}
			}
		})
	}
}

func TestAllowedClustersEmptyListDeniesRemoteClusters(t *testing.T) {
	engine := newTenancyEngine(t, minimalWorkspace())
	obj := kustomization("team-a-apps", map[string]any{
		"kubeConfig": map[string]any{"secretRef": map[string]any{"name": "staging-kubeconfig"}},
	})
	got := violations(t, engine, obj)
	want := []string{"spec.kubeConfig.secretRef.name"}
	if keys := got[PolicyID("team-a", AllowedClustersPolicy)]; strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("violations = %v, want %v from the allowed-clusters policy", got, want)
	}
}

func TestNoAllowedRepositoriesAllowsEverySource(t *testing.T) {
	engine := newTenancyEngine(t, minimalWorkspace())
	got := violations(t, engine, gitRepository("team-a-apps", "https://example.com/anything.git"))
	if len(got) != 0 {
		t.Errorf("violations = %v, want none when spec.allowedRepositories is empty", got)
	}
}

func TestViolationMessageNamesObject(t *testing.T) {
	engine := newTenancyEngine(t, fullWorkspace())
	obj := kustomization("team-b-dev", map[string]any{"serviceAccountName": "default"})
	results := engine.Evaluate(context.Background(), policy.ModeAudit, policy.ReviewFromObject(obj), policy.Subject{Object: obj})
	var messages []string
	for _, result := range results {
		for _, occurrence := range result.Occurrences {
			messages = append(messages, occurrence.Message)
		}
	}
	want := `Kustomization team-b-dev/app deploys as ServiceAccount "default", but its workspace deploys as "deployer"`
	if len(messages) != 1 || messages[0] != want {
		t.Errorf("messages = %q, want [%q]", messages, want)
	}
}
