package tenancy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata with the current output")

// minimalWorkspace lists one namespace and sets nothing else.
func minimalWorkspace() *tenancyv1alpha1.Workspace {
	return &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Namespaces: []string{"team-a-apps"}},
	}
}

// fullWorkspace sets every field of the spec.
func fullWorkspace() *tenancyv1alpha1.Workspace {
	return &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-b"},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			// Unsorted and with a duplicate, to pin the order of the output.
			Namespaces:         []string{"team-b-prod", "team-b-dev", "team-b-prod"},
			ServiceAccountName: "deployer",
			Labels: map[string]tenancyv1alpha1.LabelValue{
				"cost-center": "4711",
				// The operator's label wins over this one.
				tenancyv1alpha1.ManagedByLabel: "someone-else",
			},
			DeploymentRBAC: &tenancyv1alpha1.DeploymentRBAC{
				ClusterRole: "edit",
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{"monitoring.coreos.com"},
					Resources: []string{"servicemonitors"},
					Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
				}},
				BindRoles: []tenancyv1alpha1.RoleReference{
					{Kind: "Role", Name: "secrets-reader"},
					{Kind: "ClusterRole", Name: "view"},
					{Kind: "ClusterRole", Name: "view"},
				},
			},
			TeamRBAC: &tenancyv1alpha1.TeamRBAC{
				Groups:      []string{"team-b-developers"},
				Users:       []string{"alice@example.com"},
				ClusterRole: "view",
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""},
					Resources: []string{"pods/portforward"},
					Verbs:     []string{"create"},
				}},
			},
			AllowedRepositories: []tenancyv1alpha1.AllowedRepository{
				{Kind: "GitRepository", URL: "https://github.com/example/team-b.git"},
				{Kind: "OCIRepository", URL: "oci://ghcr.io/example/team-b", Match: tenancyv1alpha1.MatchPrefix},
				{Kind: "HelmRepository", URL: "https://charts.example.com/", Match: tenancyv1alpha1.MatchExact},
				{Kind: "Bucket", URL: "s3.amazonaws.com/team-b-artifacts"},
			},
			AllowedClusters: []tenancyv1alpha1.AllowedCluster{
				{KubeConfig: "staging-kubeconfig"},
				{KubeConfig: "edge-kubeconfig", Kind: "ConfigMap"},
			},
			DeletionPolicy: tenancyv1alpha1.DeletionPolicyDelete,
			ResourceQuota: &corev1.ResourceQuotaSpec{
				Hard: corev1.ResourceList{
					corev1.ResourcePods:           resource.MustParse("50"),
					corev1.ResourceRequestsCPU:    resource.MustParse("8"),
					corev1.ResourceLimitsMemory:   resource.MustParse("32Gi"),
					corev1.ResourceRequestsMemory: resource.MustParse("16Gi"),
				},
			},
			LimitRange: &corev1.LimitRangeSpec{
				Limits: []corev1.LimitRangeItem{{
					Type:           corev1.LimitTypeContainer,
					Default:        corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
					DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				}},
			},
		},
	}
}

// rulesOnlyWorkspace grants the ServiceAccount rules and no ClusterRole, so
// the default admin binding is left out.
func rulesOnlyWorkspace() *tenancyv1alpha1.Workspace {
	return &tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-c"},
		Spec: tenancyv1alpha1.WorkspaceSpec{
			Namespaces: []string{"team-c"},
			DeploymentRBAC: &tenancyv1alpha1.DeploymentRBAC{
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""},
					Resources: []string{"configmaps"},
					Verbs:     []string{"*"},
				}},
			},
			TeamRBAC: &tenancyv1alpha1.TeamRBAC{
				Groups:      []string{"team-c"},
				ClusterRole: "edit",
			},
		},
	}
}

func TestGenerateGolden(t *testing.T) {
	cases := map[string]*tenancyv1alpha1.Workspace{
		"minimal":    minimalWorkspace(),
		"full":       fullWorkspace(),
		"rules-only": rulesOnlyWorkspace(),
	}
	for name, ws := range cases {
		t.Run(name, func(t *testing.T) {
			objects, err := Generate(ws, Options{})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			got, err := Manifests(objects)
			if err != nil {
				t.Fatalf("Manifests: %v", err)
			}
			compareGolden(t, filepath.Join("testdata", name+".golden.yaml"), got)
		})
	}
}

// compareGolden compares got with the file at path, or rewrites the file
// with got when the test runs with -update.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run the test with -update to create it): %v", path, err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s; rerun with -update and review the diff.\ngot:\n%s", path, got)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	first, err := Generate(fullWorkspace(), Options{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for range 5 {
		again, err := Generate(fullWorkspace(), Options{})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if got, want := keysOf(again), keysOf(first); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("order changed between calls:\n%v\n%v", got, want)
		}
	}
}

func TestGenerateLabels(t *testing.T) {
	objects, err := Generate(fullWorkspace(), Options{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, obj := range objects {
		key := objectKey(obj)
		labels := obj.GetLabels()
		if got := labels[tenancyv1alpha1.ManagedByLabel]; got != tenancyv1alpha1.ManagedByValue {
			t.Errorf("%s: label %s = %q, want %q", key, tenancyv1alpha1.ManagedByLabel, got, tenancyv1alpha1.ManagedByValue)
		}
		if got := labels[tenancyv1alpha1.WorkspaceLabel]; got != "team-b" {
			t.Errorf("%s: label %s = %q, want team-b", key, tenancyv1alpha1.WorkspaceLabel, got)
		}
		if got := labels["cost-center"]; got != "4711" {
			t.Errorf("%s: workspace label cost-center = %q, want 4711", key, got)
		}
		_, hasTenant := labels[tenancyv1alpha1.TenantLabel]
		if isNamespace := kindOf(obj) == "Namespace"; hasTenant != isNamespace {
			t.Errorf("%s: has tenant label %v, want %v", key, hasTenant, isNamespace)
		}
		if len(obj.GetOwnerReferences()) != 0 {
			t.Errorf("%s: has owner references, want none", key)
		}
	}
}

func TestGenerateNoNamespaces(t *testing.T) {
	ws := minimalWorkspace()
	ws.Spec.Namespaces = nil
	objects, err := Generate(ws, Options{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(objects) != 0 {
		t.Errorf("Generate returned %v, want no objects", keysOf(objects))
	}
}

func TestGenerateEmptyAllowedRepositoriesHasNoPolicy(t *testing.T) {
	objects, err := Generate(minimalWorkspace(), Options{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	keys := keysOf(objects)
	for _, key := range keys {
		if strings.HasSuffix(key, "."+AllowedRepositoriesPolicy) {
			t.Errorf("got policy %s, want none for an empty spec.allowedRepositories", key)
		}
	}
	for _, suffix := range []string{AllowedClustersPolicy, ServiceAccountAndNamespacesPolicy} {
		want := "Policy /" + PolicyID("team-a", suffix)
		if !slices.Contains(keys, want) {
			t.Errorf("missing %s in %v", want, keys)
		}
	}
}

func TestGenerateClusterRoleAllowList(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*tenancyv1alpha1.Workspace)
		allowed []string
		// wantFields are the fields of the expected errors, empty when
		// Generate must succeed.
		wantFields []string
	}{
		{
			name:   "default admin allowed by default list",
			mutate: func(*tenancyv1alpha1.Workspace) {},
		},
		{
			name: "cluster-admin in deploymentRBAC.clusterRole",
			mutate: func(ws *tenancyv1alpha1.Workspace) {
				ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{ClusterRole: "cluster-admin"}
			},
			wantFields: []string{"spec.deploymentRBAC.clusterRole"},
		},
		{
			name: "cluster-admin in bindRoles",
			mutate: func(ws *tenancyv1alpha1.Workspace) {
				ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{BindRoles: []tenancyv1alpha1.RoleReference{
					{Kind: "Role", Name: "cluster-admin"},
					{Kind: "ClusterRole", Name: "cluster-admin"},
				}}
			},
			wantFields: []string{"spec.deploymentRBAC.bindRoles[1].name"},
		},
		{
			name: "cluster-admin in teamRBAC.clusterRole",
			mutate: func(ws *tenancyv1alpha1.Workspace) {
				ws.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{Groups: []string{"devs"}, ClusterRole: "cluster-admin"}
			},
			wantFields: []string{"spec.teamRBAC.clusterRole"},
		},
		{
			name:       "default admin outside a custom list",
			mutate:     func(*tenancyv1alpha1.Workspace) {},
			allowed:    []string{"edit"},
			wantFields: []string{"spec.deploymentRBAC.clusterRole"},
		},
		{
			name: "cluster-admin allowed explicitly",
			mutate: func(ws *tenancyv1alpha1.Workspace) {
				ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{ClusterRole: "cluster-admin"}
			},
			allowed: []string{"cluster-admin"},
		},
		{
			name: "every field at once",
			mutate: func(ws *tenancyv1alpha1.Workspace) {
				ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{
					ClusterRole: "cluster-admin",
					BindRoles:   []tenancyv1alpha1.RoleReference{{Kind: "ClusterRole", Name: "system:node"}},
				}
				ws.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{Users: []string{"bob"}, ClusterRole: "admin"}
			},
			wantFields: []string{"spec.deploymentRBAC.clusterRole", "spec.deploymentRBAC.bindRoles[0].name"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := minimalWorkspace()
			tc.mutate(ws)
			objects, err := Generate(ws, Options{AllowedClusterRoles: tc.allowed})
			if len(tc.wantFields) == 0 {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Generate succeeded, want errors on %v", tc.wantFields)
			}
			if objects != nil {
				t.Errorf("Generate returned objects with an error: %v", keysOf(objects))
			}
			var gotFields []string
			for _, e := range unwrapAll(err) {
				var notAllowed *ClusterRoleNotAllowedError
				if !errors.As(e, &notAllowed) {
					t.Fatalf("error %v is not a *ClusterRoleNotAllowedError", e)
				}
				gotFields = append(gotFields, notAllowed.Field)
				if !strings.Contains(e.Error(), notAllowed.Field) || !strings.Contains(e.Error(), "team-a") {
					t.Errorf("message %q does not name the field and the workspace", e.Error())
				}
			}
			if strings.Join(gotFields, ",") != strings.Join(tc.wantFields, ",") {
				t.Errorf("error fields = %v, want %v", gotFields, tc.wantFields)
			}
		})
	}
}

func TestBoundedName(t *testing.T) {
	short := boundedName("team-a", "deployment", "clusterrole", "view")
	if short != "team-a-deployment-clusterrole-view" {
		t.Errorf("boundedName = %q, want team-a-deployment-clusterrole-view", short)
	}
	long1 := boundedName("team-a", "deployment", "role", strings.Repeat("a", 250))
	long2 := boundedName("team-a", "deployment", "role", strings.Repeat("a", 249)+"b")
	if len(long1) != maxNameLength {
		t.Errorf("len(boundedName) = %d, want %d", len(long1), maxNameLength)
	}
	if long1 == long2 {
		t.Errorf("two long names that differ at the end got the same bounded name %q", long1)
	}
}

func keysOf(objects []client.Object) []string {
	keys := make([]string, 0, len(objects))
	for _, obj := range objects {
		keys = append(keys, objectKey(obj))
	}
	return keys
}

func objectKey(obj client.Object) string {
	return kindOf(obj) + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// unwrapAll returns the errors joined in err, or err itself.
func unwrapAll(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}
