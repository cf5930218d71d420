package tenancy

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

func workspace(name string, namespaces ...string) tenancyv1alpha1.Workspace {
	return tenancyv1alpha1.Workspace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       tenancyv1alpha1.WorkspaceSpec{Namespaces: namespaces},
	}
}

func TestValidateWorkspace(t *testing.T) {
	deleting := workspace("leaving", "shared")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now

	cases := []struct {
		name    string
		ws      tenancyv1alpha1.Workspace
		old     *tenancyv1alpha1.Workspace
		others  []tenancyv1alpha1.Workspace
		allowed []string
		// want lists each expected error as "<type> <field>", and a
		// substring of its detail after "|".
		want []string
	}{
		{
			name:   "free namespaces",
			ws:     workspace("team-a", "a1", "a2"),
			others: []tenancyv1alpha1.Workspace{workspace("team-b", "b1")},
		},
		{
			name:   "namespace of another workspace",
			ws:     workspace("team-a", "a1", "shared"),
			others: []tenancyv1alpha1.Workspace{workspace("team-b", "b1", "shared")},
			want:   []string{`Forbidden spec.namespaces[1]|already listed by Workspace "team-b"`},
		},
		{
			name:   "own stored version is no conflict",
			ws:     workspace("team-a", "a1", "a2"),
			others: []tenancyv1alpha1.Workspace{workspace("team-a", "a1")},
		},
		{
			name:   "workspace being deleted releases its namespaces",
			ws:     workspace("team-a", "shared"),
			others: []tenancyv1alpha1.Workspace{deleting},
		},
		{
			name: "update keeps an existing conflict",
			ws: func() tenancyv1alpha1.Workspace {
				ws := workspace("team-a", "shared", "a1")
				ws.Spec.ServiceAccountName = "deployer"
				return ws
			}(),
			old:    ptrTo(workspace("team-a", "shared", "a1")),
			others: []tenancyv1alpha1.Workspace{workspace("team-b", "shared")},
		},
		{
			name:   "update adds a claimed namespace",
			ws:     workspace("team-a", "a1", "b1"),
			old:    ptrTo(workspace("team-a", "a1")),
			others: []tenancyv1alpha1.Workspace{workspace("team-b", "b1")},
			want:   []string{`Forbidden spec.namespaces[1]|already listed by Workspace "team-b"`},
		},
		{
			name: "disallowed ClusterRoles",
			ws: func() tenancyv1alpha1.Workspace {
				ws := workspace("team-a", "a1")
				ws.Spec.DeploymentRBAC = &tenancyv1alpha1.DeploymentRBAC{
					ClusterRole: "cluster-admin",
					BindRoles:   []tenancyv1alpha1.RoleReference{{Kind: "ClusterRole", Name: "view"}, {Kind: "ClusterRole", Name: "system:node"}},
				}
				ws.Spec.TeamRBAC = &tenancyv1alpha1.TeamRBAC{Groups: []string{"devs"}, ClusterRole: "cluster-admin"}
				return ws
			}(),
			want: []string{
				`Unsupported value spec.deploymentRBAC.clusterRole|"admin", "edit", "view"`,
				`Unsupported value spec.deploymentRBAC.bindRoles[1].name|`,
				`Unsupported value spec.teamRBAC.clusterRole|`,
			},
		},
		{
			name:    "custom allow-list rejects the default admin",
			ws:      workspace("team-a", "a1"),
			allowed: []string{"edit"},
			want:    []string{`Unsupported value spec.deploymentRBAC.clusterRole|"edit"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateWorkspace(&tc.ws, tc.old, tc.others, tc.allowed)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors = %v, want %d: %v", errs, len(tc.want), tc.want)
			}
			for i, want := range tc.want {
				head, detail, _ := strings.Cut(want, "|")
				if got := describe(errs[i]); got != head {
					t.Errorf("error %d = %q, want %q", i, got, head)
				}
				if !strings.Contains(errs[i].Error(), detail) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), detail)
				}
			}
		})
	}
}

func describe(err *field.Error) string {
	return err.Type.String() + " " + err.Field
}

func ptrTo(ws tenancyv1alpha1.Workspace) *tenancyv1alpha1.Workspace {
	return &ws
}
