package cli

import (
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fixtureRepository is a repository with known violations; its README
// lists them.
const fixtureRepository = "../../test/fixtures/validate"

// sarifSchemaFile is the official SARIF 2.1.0 JSON schema (2.1.0-rtm.5), as
// shipped in lib/schemas of the npm package @microsoft/jest-sarif
// 1.0.0-beta.0 (MIT).
const sarifSchemaFile = "sarif-2.1.0-rtm.5.json"

// validateFixture runs validate in the fixture repository with the
// policies of its policies directory.
func validateFixture(t *testing.T, args ...string) cliResult {
	t.Helper()
	t.Chdir(fixtureRepository)
	return runCLI(t, "", append([]string{"validate", "--policies", "policies"}, args...)...)
}

func TestValidateFixtureGolden(t *testing.T) {
	for _, format := range []string{outputText, outputJSON, outputSARIF, outputJUnit} {
		t.Run(format, func(t *testing.T) {
			golden := testdataPath(t, "validate-"+format+".golden")
			got := validateFixture(t, "-o", format, ".")
			expectCode(t, got, ExitViolations)
			compareGolden(t, golden, got.stdout)
			for _, note := range []string{
				"note: skipped docs/ci-settings.yml:2: not a Kubernetes object (no apiVersion or kind)",
				"note: skipped policies: it is a --policies directory",
			} {
				if !strings.Contains(got.stderr, note) {
					t.Errorf("stderr does not contain %q:\n%s", note, got.stderr)
				}
			}
		})
	}
}

func TestValidateJSONFindsKnownViolations(t *testing.T) {
	got := validateFixture(t, "-o", "json", ".")
	expectCode(t, got, ExitViolations)
	var report jsonReport
	if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
		t.Fatalf("decode the JSON report: %v", err)
	}
	wantSummary := reportSummary{Files: 6, Objects: 9, Policies: 3, Violations: 5, Failing: 3, Errors: 0}
	if report.Summary != wantSummary {
		t.Errorf("summary %+v, want %+v", report.Summary, wantSummary)
	}

	type key struct{ file, object, policy, status string }
	var found []key
	for _, r := range report.Results {
		found = append(found, key{r.File, r.Object.Kind + " " + r.Object.Namespace + "/" + r.Object.Name, r.Policy.ID, r.Status})
	}
	want := []key{
		{"kustomize/base/deployment.yaml", "Deployment production/prod-backend", "fixtures.replica-count", "fail"},
		{"manifests/frontend.yaml", "Deployment web/frontend", "fixtures.owner-label", "warn"},
		{"manifests/frontend.yaml", "Deployment web/frontend", "fixtures.replica-count", "fail"},
		{"manifests/frontend.yaml", "Deployment web/frontend", "fixtures.run-as-non-root", "fail"},
		{"manifests/multi.yaml", "Service team-a/api", "fixtures.owner-label", "warn"},
	}

	if len(found) != len(want) {
		t.Fatalf("got results %v, want %v", found, want)
	}
	for i := range want {
		if found[i] != want[i] {
			t.Errorf("result %d: got %v, want %v", i, found[i], want[i])
		}
	}

	// The PolicyConfig for namespace production raises the minimum to 3.
	if got := report.Results[0].Occurrences[0].Message; got != "Replica count must be at least 3; found 2" {
		t.Errorf("overlay message %q", got)
	}
	if report.Results[0].Kustomization != "kustomize/overlays/production" || report.Results[0].Line != 1 {
		t.Errorf("overlay result located at %s:%d from %q", report.Results[0].File, report.Results[0].Line, report.Results[0].Kustomization)
	}
}

func TestValidateSARIFMatchesSchema(t *testing.T) {
	schemaPath := testdataPath(t, sarifSchemaFile)
	got := validateFixture(t, "-o", "sarif", ".")
	expectCode(t, got, ExitViolations)

	compiler := jsonschema.NewCompiler()
	schema, err := compiler.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile the SARIF schema: %v", err)
	}
	instance, err := jsonschema.UnmarshalJSON(strings.NewReader(got.stdout))
	if err != nil {
		t.Fatalf("decode the SARIF output: %v", err)
	}
	if err := schema.Validate(instance); err != nil {
		t.Errorf("the SARIF output does not match the SARIF 2.1.0 schema: %v", err)
	}

	var log sarifLog
	if err := json.Unmarshal([]byte(got.stdout), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 3 {
		t.Errorf("got %d rules, want one per active policy (3)", len(run.Tool.Driver.Rules))
	}
	levels := map[string]string{}
	for _, res := range run.Results {
		levels[res.RuleID] = res.Level
		if rule := run.Tool.Driver.Rules[res.RuleIndex]; rule.ID != res.RuleID {
			t.Errorf("result of %s points at rule %d, which is %s", res.RuleID, res.RuleIndex, rule.ID)
		}
		loc := res.Locations[0].PhysicalLocation
		if loc == nil || loc.Region == nil || loc.Region.StartLine < 1 {
			t.Errorf("result of %s has no file line: %+v", res.RuleID, res.Locations)
		}
	}
	wantLevels := map[string]string{
		"fixtures.run-as-non-root": "error",
		"fixtures.replica-count":   "warning",
		"fixtures.owner-label":     "note",
	}
	for id, want := range wantLevels {
		if levels[id] != want {
			t.Errorf("level of %s is %q, want %q", id, levels[id], want)
		}
	}
	if len(run.Results) != 5 {
		t.Errorf("got %d results, want one per occurrence (5)", len(run.Results))
	}
	if uri := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != "kustomize/base/deployment.yaml" {
		t.Errorf("first result URI %q, want the path relative to the working directory", uri)
	}
}

// The schema check must reject output that breaks it, or it checks
// nothing.
func TestSARIFSchemaRejectsInvalidLog(t *testing.T) {
	compiler := jsonschema.NewCompiler()
	schema, err := compiler.Compile(testdataPath(t, sarifSchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	instance, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"version": "2.1.0", "runs": [{"results": [{"level": "fatal"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if schema.Validate(instance) == nil {
		t.Error("the schema accepted a log without a tool and with an invalid level")
	}
}

func TestValidateJUnitStructure(t *testing.T) {
	got := validateFixture(t, "-o", "junit", ".")
	expectCode(t, got, ExitViolations)
	var suites junitTestSuites
	if err := xml.Unmarshal([]byte(got.stdout), &suites); err != nil {
		t.Fatalf("decode the JUnit XML: %v", err)
	}
	if suites.Failures != 5 || suites.Errors != 0 {
		t.Errorf("failures %d and errors %d, want 5 and 0", suites.Failures, suites.Errors)
	}
	names := map[string]junitTestSuite{}
	for _, s := range suites.Suites {
		names[s.Name] = s
	}
	if len(names) != 6 {
		t.Errorf("got %d test suites, want one per file (6)", len(names))
	}
	frontend := names["manifests/frontend.yaml"]
	if frontend.Tests != 3 || frontend.Failures != 3 {
		t.Errorf("frontend.yaml: %d tests and %d failures, want 3 and 3", frontend.Tests, frontend.Failures)
	}
	for _, tc := range frontend.Cases {
		if tc.Failure == nil {
			t.Errorf("test case %q has no failure", tc.Name)
		}
	}
}

func TestValidateExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"clean base", []string{"kustomize/base"}, ExitOK, "2 objects in 2 files checked against 3 policies (mode audit): 0 violations"},
		{"fail on high", []string{"--fail-on", "high", "manifests"}, ExitViolations, "4 violations, 1 failing at --fail-on high"},
		{"fail on medium without enforced medium", []string{"--fail-on", "medium", "manifests/multi.yaml"}, ExitOK, "1 violation, 0 failing"},
		{"not enforced only", []string{"manifests/multi.yaml"}, ExitOK, "WARN [low] fixtures.owner-label"},
		{"admission mode", []string{"--mode", "admission", "manifests/frontend.yaml"}, ExitViolations, "FAIL [high] fixtures.latest-image-tag"},
		{"kustomization file", []string{"kustomize/overlays/production/kustomization.yaml"}, ExitViolations,
			"kustomize/base/deployment.yaml:1: Deployment production/prod-backend (built from kustomize/overlays/production)"},
		{"only non-Kubernetes YAML", []string{"docs"}, ExitOK, "0 objects in 1 file checked"},
		{"file in the policies directory", []string{"policies/owner-label.yaml", "manifests/multi.yaml"}, ExitOK,
			"3 objects in 1 file checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validateFixture(t, tt.args...)
			expectCode(t, got, tt.code)
			if !strings.Contains(got.stdout, tt.want) {
				t.Errorf("stdout does not contain %q:\n%s", tt.want, got.stdout)
			}
		})
	}
}

func TestValidateStdin(t *testing.T) {
	policies, err := filepath.Abs(filepath.Join(fixtureRepository, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stdin\n  namespace: web\nspec:\n  replicas: 5\n" +
		"  template:\n    spec:\n      containers:\n      - name: c\n        image: c:1\n"
	got := runCLI(t, manifest, "validate", "--policies", policies, "-o", "sarif", "-")
	expectCode(t, got, ExitViolations)
	var log sarifLog
	if err := json.Unmarshal([]byte(got.stdout), &log); err != nil {
		t.Fatal(err)
	}
	results := log.Runs[0].Results
	if len(results) != 2 {
		t.Fatalf("got %d results, want run-as-non-root and owner-label:\n%s", len(results), got.stdout)
	}
	for _, res := range results {
		loc := res.Locations[0]
		if loc.PhysicalLocation != nil {
			t.Errorf("a result from standard input has a file location: %+v", loc.PhysicalLocation)
		}
		if loc.LogicalLocations[0].FullyQualifiedName != "Deployment/web/stdin" {
			t.Errorf("logical location %q", loc.LogicalLocations[0].FullyQualifiedName)
		}
	}
}

func TestValidateInputErrors(t *testing.T) {
	policies, err := filepath.Abs(filepath.Join(fixtureRepository, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Abs(filepath.Join(fixtureRepository, "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	malformed := writeFile(t, dir, "malformed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   namespace: b\n")
	badRego := writeFile(t, dir, "bad-rego/policy.yaml", `apiVersion: pac.weave.works/v2beta2
kind: Policy
metadata:
  name: bad-rego
spec:
  name: Bad Rego
  severity: low
  code: |
    package bad

    violation[result] {
      result := {"msg": }
    }
`)
	noViolation := writeFile(t, dir, "no-violation/policy.yaml", `apiVersion: pac.weave.works/v2beta3
kind: Policy
metadata:
  name: no-violation-rule
spec:
  name: No violation rule
  severity: low
  code: "package x\nallow := true\n"
`)
	conflict := writeFile(t, dir, "conflict/policy.yaml", `apiVersion: pac.weave.works/v2beta3
kind: Policy
metadata:
  name: conflict
spec:
  name: Conflicting rule
  severity: low
  targets:
    kinds: [ConfigMap]
  code: |
    package conflict

    value := 1 if input.review.object.kind == "ConfigMap"
    value := 2 if input.review.object.metadata.name == "settings"

    violation contains {"msg": "never"} if value == 3
`)
	mismatchedID := writeFile(t, dir, "id/policy.yaml", "apiVersion: pac.weave.works/v2beta3\nkind: Policy\nmetadata:\n  name: a\nspec:\n  id: b\n  name: A\n  severity: low\n  code: x\n")
	duplicate := writeFile(t, dir, "duplicate/a.yaml", "apiVersion: pac.weave.works/v2beta3\nkind: Policy\nmetadata:\n  name: a\nspec:\n  name: A\n  severity: low\n  code: \"package a\\nviolation[x] { false; x := 1 }\\n\"\n")
	writeFile(t, dir, "duplicate/b.yaml", "apiVersion: pac.weave.works/v2beta3\nkind: Policy\nmetadata:\n  name: a\nspec:\n  name: A\n  severity: low\n  code: \"package a\\nviolation[x] { false; x := 1 }\\n\"\n")
	requiredParameter := writeFile(t, dir, "required/policy.yaml", "apiVersion: pac.weave.works/v2beta3\nkind: Policy\nmetadata:\n  name: needs-parameter\nspec:\n  name: Needs a parameter\n  severity: low\n  parameters:\n  - name: limit\n    type: integer\n    required: true\n  code: \"package p\\nviolation[x] { false; x := 1 }\\n\"\n")

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"malformed YAML names the line", []string{"--policies", policies, malformed}, ExitInputError,
			malformed + ":5: invalid YAML"},
		{"bad Rego names the file and line", []string{"--policies", filepath.Dir(badRego), manifests}, ExitInputError,
			badRego + ":12: Policy bad-rego does not compile (CompileError): rego v0: line 4, column"},
		{"missing violation rule", []string{"--policies", filepath.Dir(noViolation), manifests}, ExitInputError,
			"Policy no-violation-rule does not compile (MissingViolationRule)"},
		{"evaluation error", []string{"--policies", filepath.Dir(conflict), manifests}, ExitInputError,
			"ERROR conflict: Conflicting rule"},
		{"spec.id differs from the name", []string{"--policies", filepath.Dir(mismatchedID), manifests}, ExitInputError,
			`spec.id "b" must be equal to metadata.name`},
		{"policy defined twice", []string{"--policies", filepath.Dir(duplicate), manifests}, ExitInputError,
			"Policy a is already defined at " + duplicate + ":1"},
		{"required parameter without value", []string{"--policies", filepath.Dir(requiredParameter), manifests}, ExitInputError,
			"Policy needs-parameter is not usable (InvalidParameters)"},
		{"missing policy directory", []string{"--policies", filepath.Join(dir, "missing"), manifests}, ExitInputError,
			"policy directory " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"policy directory without policies", []string{"--policies", manifests, manifests}, ExitInputError,
			"no Policy found in " + manifests},
		{"no policy source", []string{manifests}, ExitInputError, "no policies to check against"},
		{"missing input", []string{"--policies", policies, filepath.Join(dir, "nothing.yaml")}, ExitInputError,
			"nothing.yaml: no such file or directory"},
		{"no input", []string{"--policies", policies}, ExitInputError, "requires at least 1 arg"},
		{"invalid output", []string{"--policies", policies, "-o", "xml", manifests}, ExitInputError, `invalid --output "xml"`},
		{"invalid fail-on", []string{"--policies", policies, "--fail-on", "critical", manifests}, ExitInputError, `invalid --fail-on "critical"`},
		{"invalid mode", []string{"--policies", policies, "--mode", "tf-admission", manifests}, ExitInputError, `invalid --mode "tf-admission"`},
		{"unknown flag", []string{"--policy", policies, manifests}, ExitInputError, "unknown flag: --policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, "", append([]string{"validate"}, tt.args...)...)
			expectCode(t, got, tt.code)
			if !strings.Contains(got.stderr+got.stdout, tt.want) {
				t.Errorf("output does not contain %q:\nstdout:\n%s\nstderr:\n%s", tt.want, got.stdout, got.stderr)
			}
		})
	}
}
