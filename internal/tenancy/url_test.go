package tenancy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// evalRepositoriesRule evaluates query against the allowed-repositories
// module with input, and returns the first value, or nil when the query is
// undefined.
func evalRepositoriesRule(t *testing.T, query string, input map[string]any) any {
	t.Helper()
	r := rego.New(
		rego.Query(query),
		rego.Module("allowed_repositories.rego", allowedRepositoriesCode),
		rego.Input(input),
	)
	rs, err := r.Eval(context.Background())
	if err != nil {
		t.Fatalf("evaluate %s: %v", query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil
	}
	return rs[0].Expressions[0].Value
}

func TestNormalizeURL(t *testing.T) {
	cases := []struct {
		url  string
		want string
	}{
		{url: "https://github.com/example/app", want: "github.com/example/app"},
		{url: "http://github.com/example/app", want: "github.com/example/app"},
		{url: "ssh://git@github.com/example/app.git", want: "github.com/example/app"},
		{url: "https://github.com/example/app.git/", want: "github.com/example/app"},
		{url: "https://github.com/example/app///", want: "github.com/example/app"},
		{url: "https://GitHub.COM/Example/App", want: "github.com/Example/App"},
		{url: "https://user:token@github.com/example/app", want: "github.com/example/app"},
		{url: "git@github.com:example/app.git", want: "github.com/example/app"},
		{url: "oci://ghcr.io/example/charts", want: "ghcr.io/example/charts"},
		{url: "https://charts.example.com/", want: "charts.example.com"},
		{url: "  https://charts.example.com  ", want: "charts.example.com"},
		{url: "minio.example.com:9000/artifacts", want: "minio.example.com:9000/artifacts"},
		// Only a trailing ".git" is dropped, not one inside the path.
		{url: "https://example.com/repo.git/sub", want: "example.com/repo.git/sub"},
		{url: "https://example.com/app.github", want: "example.com/app.github"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			got := evalRepositoriesRule(t, "data.tenancy.allowed_repositories.normalize(input.url)",
				map[string]any{"url": tc.url})
			if got != tc.want {
				t.Errorf("normalize(%q) = %v, want %q", tc.url, got, tc.want)
			}
		})
	}
}

func TestRepositoryURLMatching(t *testing.T) {
	cases := []struct {
		name    string
		allowed []map[string]any
		kind    string
		url     string
		want    bool
	}{
		{
			name:    "exact ignores scheme and .git",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example/app", "match": "Exact"}},
			kind:    "GitRepository", url: "ssh://git@github.com/example/app.git", want: true,
		},
		{
			name:    "exact is the default match",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example/app"}},
			kind:    "GitRepository", url: "https://github.com/example/app/", want: true,
		},
		{
			name:    "exact rejects a longer path",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example/app", "match": "Exact"}},
			kind:    "GitRepository", url: "https://github.com/example/app-fork", want: false,
		},
		{
			name:    "kind must match",
			allowed: []map[string]any{{"kind": "HelmRepository", "url": "https://github.com/example/app", "match": "Exact"}},
			kind:    "GitRepository", url: "https://github.com/example/app", want: false,
		},
		{
			name:    "prefix allows itself",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example/", "match": "Prefix"}},
			kind:    "GitRepository", url: "https://github.com/example", want: true,
		},
		{
			name:    "prefix allows a path below",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example", "match": "Prefix"}},
			kind:    "GitRepository", url: "https://github.com/example/team/app.git", want: true,
		},
		{
			name:    "prefix stops at a path boundary",
			allowed: []map[string]any{{"kind": "GitRepository", "url": "https://github.com/example", "match": "Prefix"}},
			kind:    "GitRepository", url: "https://github.com/example-evil/app", want: false,
		},
		{
			name:    "host prefix does not allow a longer host",
			allowed: []map[string]any{{"kind": "OCIRepository", "url": "oci://ghcr.io", "match": "Prefix"}},
			kind:    "OCIRepository", url: "oci://ghcr.io.evil.example/app", want: false,
		},
		{
			name:    "host prefix allows the host's paths",
			allowed: []map[string]any{{"kind": "OCIRepository", "url": "oci://ghcr.io", "match": "Prefix"}},
			kind:    "OCIRepository", url: "oci://ghcr.io/example/app", want: true,
		},
		{
			name:    "empty list allows nothing",
			allowed: []map[string]any{},
			kind:    "GitRepository", url: "https://github.com/example/app", want: false,
		},
		{
			name: "second entry matches",
			allowed: []map[string]any{
				{"kind": "GitRepository", "url": "https://gitlab.com/example/app", "match": "Exact"},
				{"kind": "GitRepository", "url": "https://github.com/example/app", "match": "Exact"},
			},
			kind: "GitRepository", url: "https://github.com/example/app", want: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := map[string]any{
				"kind":       tc.kind,
				"url":        tc.url,
				"parameters": map[string]any{"allowed_repositories": tc.allowed},
			}
			got := evalRepositoriesRule(t, "data.tenancy.allowed_repositories.allowed(input.kind, input.url)", input)
			if allowed := got == true; allowed != tc.want {
				t.Errorf("allowed(%s, %q) = %v, want %v", tc.kind, tc.url, allowed, tc.want)
			}
		})
	}
}
