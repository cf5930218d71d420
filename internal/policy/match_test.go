package policy

import (
	"slices"
	"testing"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

func TestAppliesTo(t *testing.T) {
	tests := []struct {
		name    string
		targets pacv2beta3.PolicyTargets
		exclude pacv2beta3.PolicyExclusions
		// object is the Deployment "web" in namespace "apps" with labels
		// app=web and tier=frontend unless the case changes it.
		namespace string
		want      bool
	}{
		{name: "empty targets match everything", want: true},
		{name: "kind listed", targets: pacv2beta3.PolicyTargets{Kinds: []string{"Pod", "Deployment"}}, want: true},
		{name: "kind not listed", targets: pacv2beta3.PolicyTargets{Kinds: []string{"Pod"}}, want: false},
		{name: "namespace listed", targets: pacv2beta3.PolicyTargets{Namespaces: []string{"apps"}}, want: true},
		{name: "namespace not listed", targets: pacv2beta3.PolicyTargets{Namespaces: []string{"other"}}, want: false},
		{
			name:      "cluster-scoped object with target namespaces",
			targets:   pacv2beta3.PolicyTargets{Namespaces: []string{"apps"}},
			namespace: "-",
			want:      false,
		},
		{
			name:    "all labels of one map",
			targets: pacv2beta3.PolicyTargets{Labels: []map[string]string{{"app": "web", "tier": "frontend"}}},
			want:    true,
		},
		{
			name:    "only some labels of a map",
			targets: pacv2beta3.PolicyTargets{Labels: []map[string]string{{"app": "web", "tier": "backend"}}},
			want:    false,
		},
		{
			name: "second label map matches",
			targets: pacv2beta3.PolicyTargets{Labels: []map[string]string{
				{"app": "db"},
				{"tier": "frontend"},
			}},
			want: true,
		},
		{
			name:    "wildcard label value",
			targets: pacv2beta3.PolicyTargets{Labels: []map[string]string{{"app": "*"}}},
			want:    true,
		},
		{
			name:    "wildcard needs the key",
			targets: pacv2beta3.PolicyTargets{Labels: []map[string]string{{"owner": "*"}}},
			want:    false,
		},
		{name: "excluded namespace", exclude: pacv2beta3.PolicyExclusions{Namespaces: []string{"apps"}}, want: false},
		{name: "other namespace excluded", exclude: pacv2beta3.PolicyExclusions{Namespaces: []string{"kube-system"}}, want: true},
		{name: "excluded resource", exclude: pacv2beta3.PolicyExclusions{Resources: []string{"apps/web"}}, want: false},
		{name: "excluded resource in other namespace", exclude: pacv2beta3.PolicyExclusions{Resources: []string{"other/web"}}, want: true},
		{
			name:    "bare name excludes only cluster-scoped objects",
			exclude: pacv2beta3.PolicyExclusions{Resources: []string{"web"}},
			want:    true,
		},
		{
			name:      "bare name excludes cluster-scoped object",
			exclude:   pacv2beta3.PolicyExclusions{Resources: []string{"web"}},
			namespace: "-",
			want:      false,
		},
		{
			name:    "excluded labels",
			exclude: pacv2beta3.PolicyExclusions{Labels: []map[string]string{{"tier": "frontend"}}},
			want:    false,
		},
		{
			name:    "excluded wildcard label",
			exclude: pacv2beta3.PolicyExclusions{Labels: []map[string]string{{"tier": "*"}}},
			want:    false,
		},
		{
			name:    "exclude labels partly matching",
			exclude: pacv2beta3.PolicyExclusions{Labels: []map[string]string{{"tier": "frontend", "app": "db"}}},
			want:    true,
		},
		{
			name:    "exclude wins over target",
			targets: pacv2beta3.PolicyTargets{Kinds: []string{"Deployment"}, Namespaces: []string{"apps"}},
			exclude: pacv2beta3.PolicyExclusions{Namespaces: []string{"apps"}},
			want:    false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespace := "apps"
			if tt.namespace == "-" {
				namespace = ""
			}
			obj := deployment(namespace, "web", map[string]string{"app": "web", "tier": "frontend"}, "app")
			p := newPolicy("p", "")
			p.Spec.Targets = tt.targets
			p.Spec.Exclude = tt.exclude
			if got := AppliesTo(p, obj); got != tt.want {
				t.Errorf("AppliesTo() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestActivePolicies(t *testing.T) {
	security := newPolicy("security", "")
	security.Spec.Category = "weave.categories.pod-security"
	security.Spec.Severity = pacv2beta3.SeverityHigh
	security.Spec.Standards = []pacv2beta3.PolicyStandard{{ID: "weave.standards.cis-benchmark"}}

	labels := newPolicy("labels", "")
	labels.Spec.Tags = []string{"hygiene"}
	labels.Spec.Severity = pacv2beta3.SeverityLow

	terraform := newPolicy("terraform", "")
	terraform.Spec.Provider = pacv2beta3.ProviderTerraform
	terraform.Spec.Severity = pacv2beta3.SeverityHigh

	policies := []pacv2beta3.Policy{*security, *labels, *terraform}

	tests := []struct {
		name string
		mode Mode
		sets []pacv2beta2.PolicySet
		want []string
	}{
		{name: "no sets, audit", mode: ModeAudit, want: []string{"labels", "security"}},
		{name: "no sets, admission", mode: ModeAdmission, want: []string{"labels", "security"}},
		{name: "no sets, tf-admission", mode: ModeTFAdmission, want: []string{"terraform"}},
		{
			name: "set of another mode leaves this mode open",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAudit, pacv2beta2.PolicySetFilters{IDs: []string{"labels"}})},
			want: []string{"labels", "security"},
		},
		{
			name: "select by id",
			mode: ModeAudit,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAudit, pacv2beta2.PolicySetFilters{IDs: []string{"labels"}})},
			want: []string{"labels"},
		},
		{
			name: "select by category",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{
				Categories: []string{"weave.categories.pod-security"},
			})},
			want: []string{"security"},
		},
		{
			name: "select by severity",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{
				Severities: []string{pacv2beta3.SeverityLow},
			})},
			want: []string{"labels"},
		},
		{
			name: "select by standard",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{
				Standards: []string{"weave.standards.cis-benchmark"},
			})},
			want: []string{"security"},
		},
		{
			name: "select by tag",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{
				Tags: []string{"hygiene"},
			})},
			want: []string{"labels"},
		},
		{
			name: "any filter of any set selects",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{
				policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{Tags: []string{"hygiene"}}),
				policySet("b", ModeAdmission, pacv2beta2.PolicySetFilters{IDs: []string{"nothing"}, Severities: []string{"high"}}),
			},
			want: []string{"labels", "security"},
		},
		{
			name: "set without filters selects nothing",
			mode: ModeAudit,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAudit, pacv2beta2.PolicySetFilters{})},
			want: nil,
		},
		{
			name: "terraform policy selected only in tf-admission",
			mode: ModeAdmission,
			sets: []pacv2beta2.PolicySet{policySet("a", ModeAdmission, pacv2beta2.PolicySetFilters{IDs: []string{"terraform"}})},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range ActivePolicies(tt.mode, policies, tt.sets) {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ActivePolicies() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestActiveModes(t *testing.T) {
	p := newPolicy("p", "")
	sets := []pacv2beta2.PolicySet{policySet("a", ModeAudit, pacv2beta2.PolicySetFilters{IDs: []string{"other"}})}
	got := ActiveModes(p, sets)
	if want := []Mode{ModeAdmission}; !slices.Equal(got, want) {
		t.Errorf("ActiveModes() = %v, want %v", got, want)
	}
}

func TestTargetKinds(t *testing.T) {
	a := newPolicy("a", "")
	a.Spec.Targets.Kinds = []string{"Pod", "Deployment"}
	b := newPolicy("b", "")
	b.Spec.Targets.Kinds = []string{"Deployment", "Service"}
	all := newPolicy("all", "")

	kinds, allKinds := TargetKinds([]pacv2beta3.Policy{*a, *b})
	if want := []string{"Deployment", "Pod", "Service"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	if allKinds {
		t.Errorf("allKinds = true, want false when every policy lists kinds")
	}

	_, allKinds = TargetKinds([]pacv2beta3.Policy{*a, *all})
	if !allKinds {
		t.Errorf("allKinds = false, want true when a policy has no kinds")
	}
}
