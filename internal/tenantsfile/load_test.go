package tenantsfile

import (
	"errors"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// everyKey is a tenants file that uses every key of the Weave GitOps
// format.
const everyKey = `serviceAccount:
  name: reconciler
tenants:
  - name: team-a
    namespaces: [team-a-apps, team-a-jobs]
    labels:
      environment: dev
    allowedRepositories:
      - kind: GitRepository
        url: https://github.com/example-org/team-a
    allowedClusters:
      - kubeConfig: staging-kubeconfig
    teamRBAC:
      groupNames: [team-a-developers]
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
    deploymentRBAC:
      bindRoles:
        - name: view
          kind: ClusterRole
      rules:
        - apiGroups: [apps]
          resources: [deployments]
          verbs: [get, patch]
  - name: team-b
    namespaces: [team-b]
`

func TestLoadMapsEveryKey(t *testing.T) {
	f, err := Load("tenants.yaml", []byte(everyKey), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	workspaces := f.Workspaces()
	if len(workspaces) != 2 {
		t.Fatalf("got %d Workspaces, want 2", len(workspaces))
	}
	want := tenancyv1alpha1.WorkspaceSpec{
		Namespaces:         []string{"team-a-apps", "team-a-jobs"},
		ServiceAccountName: "reconciler",
		Labels:             map[string]tenancyv1alpha1.LabelValue{"environment": "dev"},
		AllowedRepositories: []tenancyv1alpha1.AllowedRepository{
			{Kind: "GitRepository", URL: "https://github.com/example-org/team-a"},
		},
		AllowedClusters: []tenancyv1alpha1.AllowedCluster{{KubeConfig: "staging-kubeconfig"}},
		TeamRBAC: &tenancyv1alpha1.TeamRBAC{
			Groups: []string{"team-a-developers"},
			Rules:  []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
		},
		DeploymentRBAC: &tenancyv1alpha1.DeploymentRBAC{
			BindRoles: []tenancyv1alpha1.RoleReference{{Kind: "ClusterRole", Name: "view"}},
			Rules:     []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "patch"}}},
		},
	}
	if !equality.Semantic.DeepEqual(workspaces[0].Spec, want) {
		t.Errorf("team-a spec:\ngot  %+v\nwant %+v", workspaces[0].Spec, want)
	}
	if workspaces[0].Name != "team-a" || workspaces[0].Kind != "Workspace" ||
		workspaces[0].APIVersion != tenancyv1alpha1.GroupVersion.String() {
		t.Errorf("team-a identity: got %s %s %s", workspaces[0].APIVersion, workspaces[0].Kind, workspaces[0].Name)
	}
	if workspaces[0].Spec.TeamRBAC.ClusterRole != "" {
		t.Errorf("teamRBAC.clusterRole = %q, want unset", workspaces[0].Spec.TeamRBAC.ClusterRole)
	}
	if got := workspaces[1].Spec; got.ServiceAccountName != "reconciler" || got.DeploymentRBAC != nil || got.TeamRBAC != nil {
		t.Errorf("team-b spec: %+v", got)
	}
}

func TestLoadWithoutServiceAccount(t *testing.T) {
	f, err := Load("tenants.yaml", []byte("tenants:\n- name: a\n  namespaces: [a]\n"), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := f.Workspaces()[0].Spec.ServiceAccountName; got != "" {
		t.Errorf("serviceAccountName = %q, want unset so that it defaults to the tenant name", got)
	}
}

// wantProblem is one expected problem: its line and a part of its text.
type wantProblem struct {
	line int
	text string
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		file string
		opts Options
		want []wantProblem
	}{{
		name: "malformed YAML",
		file: "tenants:\n  - name: a\n    namespaces: [a\n",
		want: []wantProblem{{3, "invalid YAML: did not find expected ',' or ']'"}},
	}, {
		name: "unknown key with suggestion",
		file: "tenants:\n  - name: a\n    namespace: [a]\n    namespaces: [a]\n",
		want: []wantProblem{{3, `tenants[0].namespace: unknown key "namespace" (did you mean "namespaces"?)`}},
	}, {
		name: "unknown top-level key",
		file: "tenant:\n  - name: a\n",
		want: []wantProblem{{1, `tenant: unknown key "tenant"`}, {0, "tenants: at least one tenant is required"}},
	}, {
		name: "unknown key in a rule",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  teamRBAC:\n    groupNames: [g]\n    rules:\n    - apiGroups: ['']\n      resources: [pods]\n      verb: [get]\n",
		want: []wantProblem{
			{7, "tenants[0].teamRBAC.rules[0].verbs: at least one verb is required"},
			{9, `tenants[0].teamRBAC.rules[0].verb: unknown key "verb" (did you mean "verbs"?)`},
		},
	}, {
		name: "duplicate key",
		file: "tenants:\n- name: a\n  name: b\n  namespaces: [a]\n",
		want: []wantProblem{{3, `tenants[0].name: duplicate key "name": it is already set on line 2`}},
	}, {
		name: "value of the wrong type",
		file: "tenants:\n- name: a\n  namespaces: a\n  labels:\n    team: 42\n",
		want: []wantProblem{
			{3, `tenants[0].namespaces: expected a list, found str "a"`},
			{3, "tenants[0].namespaces: at least one namespace is required"},
			{5, `tenants[0].labels[team]: expected a string, found int "42"; quote the value`},
		},
	}, {
		name: "invalid names",
		file: "serviceAccount:\n  name: Bad_SA\ntenants:\n- name: Team_A\n  namespaces: [ok, Bad_NS, '']\n",
		want: []wantProblem{
			{2, `serviceAccount.name: "Bad_SA" is not a valid ServiceAccount name`},
			{4, `tenants[0].name: "Team_A" is not a valid tenant name`},
			{5, `tenants[0].namespaces[1]: "Bad_NS" is not a valid namespace name`},
			{5, "tenants[0].namespaces[2]: a namespace name must not be empty"},
		},
	}, {
		name: "duplicates",
		file: "tenants:\n- name: a\n  namespaces: [x, y, x]\n- name: a\n  namespaces: [y]\n",
		want: []wantProblem{
			{3, `tenants[0].namespaces[2]: namespace "x" is listed twice: also at tenants[0].namespaces[0]`},
			{4, `tenants[1].name: duplicate tenant name "a": tenants[0] has the same name`},
			{5, `tenants[1].namespaces[0]: namespace "y" is already claimed by tenant "a" at tenants[0].namespaces[1]`},
		},
	}, {
		name: "empty namespaces",
		file: "tenants:\n- name: a\n  namespaces: []\n- name: b\n",
		want: []wantProblem{
			{3, "tenants[0].namespaces: at least one namespace is required"},
			{4, "tenants[1].namespaces: at least one namespace is required"},
		},
	}, {
		name: "labels",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  labels:\n    'bad key!': v\n    ok: 'bad value!'\n",
		want: []wantProblem{
			{5, `tenants[0].labels[bad key!]: "bad key!" is not a valid label key`},
			{6, `tenants[0].labels[ok]: "bad value!" is not a valid label value`},
		},
	}, {
		name: "repositories and clusters",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  allowedRepositories:\n  - kind: Git\n    url: https://x\n  - kind: Bucket\n  allowedClusters:\n  - kubeConfig: Bad_Secret\n",
		want: []wantProblem{
			{5, `tenants[0].allowedRepositories[0].kind: unsupported kind "Git"`},
			{7, "tenants[0].allowedRepositories[1].url: a URL is required"},
			{9, `tenants[0].allowedClusters[0].kubeConfig: "Bad_Secret" is not a valid Secret name`},
		},
	}, {
		name: "team RBAC",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  teamRBAC:\n    groupNames: [g, g]\n    rules:\n    - nonResourceURLs: [/healthz]\n      verbs: [get]\n",
		want: []wantProblem{
			{5, `tenants[0].teamRBAC.groupNames[1]: group "g" is listed twice`},
			{7, "tenants[0].teamRBAC.rules[0].nonResourceURLs: nonResourceURLs are not allowed"},
		},
	}, {
		name: "team RBAC without groups or rules",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  teamRBAC: {}\n",
		want: []wantProblem{
			{4, "tenants[0].teamRBAC.groupNames: at least one group is required"},
			{4, "tenants[0].teamRBAC.rules: at least one rule is required"},
		},
	}, {
		name: "duplicate binding",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  deploymentRBAC:\n    bindRoles:\n    - {name: r, kind: Role}\n    - {name: r, kind: Role}\n    - {name: x, kind: Rol}\n    - {kind: Role}\n",
		want: []wantProblem{
			{7, `tenants[0].deploymentRBAC.bindRoles[1]: duplicate binding: tenants[0].deploymentRBAC.bindRoles[0] already binds Role "r"`},
			{8, `tenants[0].deploymentRBAC.bindRoles[2].kind: unsupported kind "Rol"`},
			{9, "tenants[0].deploymentRBAC.bindRoles[3].name: a role name is required"},
		},
	}, {
		name: "ClusterRole outside the allow-list",
		file: "tenants:\n- name: a\n  namespaces: [a]\n  deploymentRBAC:\n    bindRoles:\n    - {name: cluster-admin, kind: ClusterRole}\n",
		want: []wantProblem{
			{6, `tenants[0].deploymentRBAC.bindRoles[0].name: ClusterRole "cluster-admin" is not allowed: use one of admin, edit, view`},
		},
	}, {
		name: "default ClusterRole outside the allow-list",
		file: "tenants:\n- name: a\n  namespaces: [a]\n",
		opts: Options{AllowedClusterRoles: []string{"edit"}},
		want: []wantProblem{
			{2, `tenants[0]: without deploymentRBAC rules or bindRoles the operator binds ClusterRole "admin", which is not allowed`},
		},
	}, {
		name: "two documents",
		file: "tenants:\n- name: a\n  namespaces: [a]\n---\ntenants: []\n",
		want: []wantProblem{{4, "more than one YAML document"}},
	}, {
		name: "empty file",
		file: "# only a comment\n",
		want: []wantProblem{{0, "the file is empty"}},
	}, {
		name: "root is a list",
		file: "- name: a\n",
		want: []wantProblem{{1, "expected a mapping with a tenants list, found a list"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Load("tenants.yaml", []byte(tt.file), tt.opts)
			if err == nil {
				t.Fatalf("Load returned no error")
			}
			if f != nil {
				t.Errorf("Load returned a File with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, want := range tt.want {
				got := list[i]
				if got.Line != want.line {
					t.Errorf("problem %d: line %d, want %d: %v", i, got.Line, want.line, got)
				}
				if !strings.Contains(got.Error(), want.text) {
					t.Errorf("problem %d: %q does not contain %q", i, got.Error(), want.text)
				}
				if got.File != "tenants.yaml" {
					t.Errorf("problem %d: file %q, want tenants.yaml", i, got.File)
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "t.yaml", Line: 3, Column: 5, Field: "tenants[0].name", Message: "bad"}, "t.yaml:3:5: tenants[0].name: bad"},
		{Error{File: "t.yaml", Message: "bad"}, "t.yaml: bad"},
		{Error{Line: 2, Message: "bad"}, "line 2: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
