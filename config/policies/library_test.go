package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

const (
	idPrefix       = "td.baseline."
	libraryLabel   = "trusted-delivery.dev/library"
	libraryValue   = "baseline"
	policySetFile  = "policyset-baseline.yaml"
	testdataDir    = "testdata"
	minPolicyCount = 32
)

var (
	severities = []string{"low", "medium", "high"}
	categories = []string{
		"td.categories.pod-security",
		"td.categories.reliability",
		"td.categories.resources",
		"td.categories.images",
		"td.categories.rbac",
		"td.categories.network",
		"td.categories.flux",
	}
	// parameterRef matches a read of a parameter in Rego code.
	parameterRef = regexp.MustCompile(`input\.parameters\.([A-Za-z_][A-Za-z0-9_]*)`)
)

// libraryPolicy is one policy manifest of the library, compiled.
type libraryPolicy struct {
	file   string
	policy pacv2beta3.Policy
	// packagePath is the Rego package path without the data. prefix.
	packagePath string
	// defaults maps each declared parameter to its default value.
	defaults map[string]any
	query    rego.PreparedEvalQuery
}

// loadLibrary parses and compiles every policy manifest in Manifests. It
// skips the PolicySet and fails the test on any manifest it cannot compile.
func loadLibrary(t *testing.T) []libraryPolicy {
	t.Helper()
	files, err := fs.Glob(Manifests, "*.yaml")
	if err != nil {
		t.Fatalf("list manifests: %v", err)
	}
	var library []libraryPolicy
	for _, file := range files {
		if file == policySetFile {
			continue
		}
		data, err := Manifests.ReadFile(file)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		var policy pacv2beta3.Policy
		if err := yaml.UnmarshalStrict(data, &policy); err != nil {
			t.Fatalf("%s: invalid policy manifest: %v", file, err)
		}
		module, err := ast.ParseModuleWithOpts(file, policy.Spec.Code, ast.ParserOptions{
			RegoVersion: ast.RegoV1,
		})
		if err != nil {
			t.Fatalf("%s: spec.code does not parse as Rego v1: %v", file, err)
		}
		packagePath := strings.TrimPrefix(module.Package.Path.String(), "data.")
		query, err := rego.New(
			rego.Query("data."+packagePath+".violation"),
			rego.Module(file, policy.Spec.Code),
			rego.SetRegoVersion(ast.RegoV1),
			rego.Strict(true),
		).PrepareForEval(context.Background())
		if err != nil {
			t.Fatalf("%s: spec.code does not compile: %v", file, err)
		}
		defaults, err := parameterDefaults(policy.Spec.Parameters)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		library = append(library, libraryPolicy{
			file:        file,
			policy:      policy,
			packagePath: packagePath,
			defaults:    defaults,
			query:       query,
		})
	}
	return library
}

func parameterDefaults(parameters []pacv2beta3.PolicyParameters) (map[string]any, error) {
	defaults := make(map[string]any, len(parameters))
	for _, parameter := range parameters {
		var value any
		if parameter.Value != nil {
			if err := json.Unmarshal(parameter.Value.Raw, &value); err != nil {
				return nil, fmt.Errorf("parameter %s: invalid value: %w", parameter.Name, err)
			}
		}
		defaults[parameter.Name] = value
	}
	return defaults, nil
}

// matchesType reports whether a JSON-decoded value fits a declared parameter
// type.
func matchesType(value any, parameterType string) bool {
	switch parameterType {
	case "string":
		_, ok := value.(string)
		return ok
	case "integer":
		number, ok := value.(float64)
		return ok && number == float64(int64(number))
	case "number":
		_, ok := value.(float64)
		return ok
	case "boolean":
		_, ok := value.(bool)
		return ok
	case "array":
		_, ok := value.([]any)
		return ok
	case "object":
		_, ok := value.(map[string]any)
		return ok
	}
	return false
}

// readManifest parses one YAML test manifest, keeping integers exact.
func readManifest(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", path, err)
	}
	decoder := json.NewDecoder(bytes.NewReader(jsonData))
	decoder.UseNumber()
	var object map[string]any
	if err := decoder.Decode(&object); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return object, nil
}

// evaluate runs the policy on object as a CREATE request and returns the
// elements of the violation set.
func evaluate(p libraryPolicy, object, parameters map[string]any) ([]any, error) {
	input := map[string]any{
		"review": map[string]any{
			"object":    object,
			"operation": "CREATE",
		},
		"parameters": parameters,
	}
	results, err := p.query.Eval(context.Background(), rego.EvalInput(input))
	if err != nil {
		return nil, err
	}
	if len(results) == 0 || len(results[0].Expressions) == 0 {
		return nil, nil
	}
	violations, ok := results[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("violation is %T, expected a set", results[0].Expressions[0].Value)
	}
	return violations, nil
}

// testCases lists the pass-*.yaml and fail-*.yaml files of one policy.
func testCases(t *testing.T, id string) (pass, fail []string) {
	t.Helper()
	dir := filepath.Join(testdataDir, id)
	pass, err := filepath.Glob(filepath.Join(dir, "pass-*.yaml"))
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	fail, err = filepath.Glob(filepath.Join(dir, "fail-*.yaml"))
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return pass, fail
}

func TestLibrarySize(t *testing.T) {
	library := loadLibrary(t)
	if len(library) < minPolicyCount {
		t.Errorf("library has %d policies, expected at least %d", len(library), minPolicyCount)
	}
}

func TestPolicyManifestFields(t *testing.T) {
	for _, p := range loadLibrary(t) {
		t.Run(p.file, func(t *testing.T) {
			spec := p.policy.Spec
			name := p.policy.Name
			if p.policy.APIVersion != pacv2beta3.GroupVersion.String() || p.policy.Kind != "Policy" {
				t.Errorf("apiVersion/kind is %s/%s, expected %s/Policy",
					p.policy.APIVersion, p.policy.Kind, pacv2beta3.GroupVersion)
			}
			if p.file != name+".yaml" {
				t.Errorf("file name %s, expected %s.yaml", p.file, name)
			}
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				t.Errorf("metadata.name %q is not a DNS-1123 subdomain: %v", name, errs)
			}
			if !strings.HasPrefix(name, idPrefix) {
				t.Errorf("metadata.name %q does not start with %s", name, idPrefix)
			}
			if spec.ID != name {
				t.Errorf("spec.id %q differs from metadata.name %q", spec.ID, name)
			}
			if got := p.policy.Labels[libraryLabel]; got != libraryValue {
				t.Errorf("label %s is %q, expected %q", libraryLabel, got, libraryValue)
			}
			if spec.Name == "" {
				t.Error("spec.name is empty")
			}
			if spec.Description == "" {
				t.Error("spec.description is empty")
			}
			if strings.TrimSpace(spec.HowToSolve) == "" {
				t.Error("spec.how_to_solve is empty")
			}
			if !slices.Contains(categories, spec.Category) {
				t.Errorf("spec.category %q is not one of %v", spec.Category, categories)
			}
			if !slices.Contains(severities, spec.Severity) {
				t.Errorf("spec.severity %q is not one of %v", spec.Severity, severities)
			}
			if !slices.Contains(spec.Tags, libraryValue) {
				t.Errorf("spec.tags %v lack %q, so the baseline PolicySet misses the policy", spec.Tags, libraryValue)
			}
			if spec.Enforce == nil {
				t.Error("spec.enforce is not set, but every library policy must state it")
			}
			if len(spec.Targets.Kinds) == 0 {
				t.Error("spec.targets.kinds is empty")
			}
			wantPackage := idPrefix + strings.ReplaceAll(strings.TrimPrefix(name, idPrefix), "-", "_")
			if p.packagePath != wantPackage {
				t.Errorf("Rego package is %s, expected %s", p.packagePath, wantPackage)
			}
		})
	}
}

func TestPolicyParameters(t *testing.T) {
	for _, p := range loadLibrary(t) {
		t.Run(p.file, func(t *testing.T) {
			declared := map[string]bool{}
			for _, parameter := range p.policy.Spec.Parameters {
				declared[parameter.Name] = true
				value := p.defaults[parameter.Name]
				if value == nil {
					if parameter.Required {
						t.Errorf("parameter %s is required but has no default value", parameter.Name)
					}
					continue
				}
				if !matchesType(value, parameter.Type) {
					t.Errorf("parameter %s: default %v does not match type %s", parameter.Name, value, parameter.Type)
				}
			}
			used := map[string]bool{}
			for _, match := range parameterRef.FindAllStringSubmatch(p.policy.Spec.Code, -1) {
				used[match[1]] = true
				if !declared[match[1]] {
					t.Errorf("spec.code reads input.parameters.%s, which is not declared", match[1])
				}
			}
			for name := range declared {
				if !used[name] {
					t.Errorf("parameter %s is declared but spec.code never reads it", name)
				}
			}
		})
	}
}

// updateGolden rewrites the violations.golden.json files from the current
// results instead of comparing with them.
var updateGolden = flag.Bool("update", false, "rewrite testdata/*/violations.golden.json from the current results")

// goldenFile is the file of a policy's testdata directory that records the
// violations of each fail-*.yaml, so that a change to a message, a key or a
// recommended value shows up in review.
const goldenFile = "violations.golden.json"

func TestPolicyTestdata(t *testing.T) {
	for _, p := range loadLibrary(t) {
		t.Run(p.policy.Name, func(t *testing.T) {
			pass, fail := testCases(t, p.policy.Name)
			if len(pass) == 0 {
				t.Errorf("no pass-*.yaml in %s", filepath.Join(testdataDir, p.policy.Name))
			}
			if len(fail) == 0 {
				t.Errorf("no fail-*.yaml in %s", filepath.Join(testdataDir, p.policy.Name))
			}
			got := map[string][]any{}
			for _, path := range append(pass, fail...) {
				wantViolation := strings.HasPrefix(filepath.Base(path), "fail-")
				t.Run(filepath.Base(path), func(t *testing.T) {
					object, err := readManifest(path)
					if err != nil {
						t.Fatal(err)
					}
					kind, _ := object["kind"].(string)
					if !slices.Contains(p.policy.Spec.Targets.Kinds, kind) {
						t.Fatalf("kind %q is not in spec.targets.kinds %v", kind, p.policy.Spec.Targets.Kinds)
					}
					violations, err := evaluate(p, object, p.defaults)
					if err != nil {
						t.Fatalf("evaluate: %v", err)
					}
					if wantViolation && len(violations) == 0 {
						t.Error("no violations, expected at least one")
					}
					if !wantViolation && len(violations) > 0 {
						t.Errorf("%d violations, expected none: %v", len(violations), violations)
					}
					for _, v := range violations {
						checkViolation(t, v)
					}
					if wantViolation {
						got[filepath.Base(path)] = violations
					}
				})
			}
			compareGolden(t, filepath.Join(testdataDir, p.policy.Name, goldenFile), got)
		})
	}
}

// compareGolden compares the violations of each fail case with the golden
// file, or rewrites the file with -update. Violations are sorted by their
// JSON text, because a set has no order.
func compareGolden(t *testing.T, path string, violations map[string][]any) {
	t.Helper()
	for _, list := range violations {
		slices.SortFunc(list, func(a, b any) int {
			return strings.Compare(jsonString(t, a), jsonString(t, b))
		})
	}
	got, err := json.MarshalIndent(violations, "", "  ")
	if err != nil {
		t.Fatalf("marshal violations: %v", err)
	}
	got = append(got, '\n')
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run go test ./config/policies -update to create it)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("violations differ from %s (run go test ./config/policies -update and review the diff):\ngot:\n%s", path, got)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(data)
}

// checkViolation asserts that an element of the violation set has the fields
// of the Rego contract.
func checkViolation(t *testing.T, v any) {
	t.Helper()
	occurrence, ok := v.(map[string]any)
	if !ok {
		t.Errorf("violation %v is %T, expected an object", v, v)
		return
	}
	if msg, _ := occurrence["msg"].(string); msg == "" {
		t.Errorf("violation %v has no msg", occurrence)
	}
	if key, _ := occurrence["violating_key"].(string); key == "" {
		t.Errorf("violation %v has no violating_key", occurrence)
	}
	if _, ok := occurrence["recommended_value"]; !ok {
		t.Errorf("violation %v has no recommended_value", occurrence)
	}
}

// TestExcludeLabel checks that every policy declaring exclude_label_key
// skips its failing test objects once they carry the configured label.
func TestExcludeLabel(t *testing.T) {
	const key, value = "example.com/policy-exempt", "approved"
	for _, p := range loadLibrary(t) {
		if _, ok := p.defaults["exclude_label_key"]; !ok {
			continue
		}
		t.Run(p.policy.Name, func(t *testing.T) {
			parameters := map[string]any{}
			for name, v := range p.defaults {
				parameters[name] = v
			}
			parameters["exclude_label_key"] = key
			parameters["exclude_label_value"] = value
			_, fail := testCases(t, p.policy.Name)
			for _, path := range fail {
				object, err := readManifest(path)
				if err != nil {
					t.Fatal(err)
				}
				metadata, _ := object["metadata"].(map[string]any)
				labels, _ := metadata["labels"].(map[string]any)
				if labels == nil {
					labels = map[string]any{}
					metadata["labels"] = labels
				}

				labels[key] = "other"
				violations, err := evaluate(p, object, parameters)
				if err != nil {
					t.Fatalf("%s: evaluate: %v", path, err)
				}
				if len(violations) == 0 {
					t.Errorf("%s: no violations with label %s=other, expected only the value %q to exclude the object",
						path, key, value)
				}

				labels[key] = value
				violations, err = evaluate(p, object, parameters)
				if err != nil {
					t.Fatalf("%s: evaluate: %v", path, err)
				}
				if len(violations) > 0 {
					t.Errorf("%s: %d violations on an excluded object, expected none", path, len(violations))
				}
			}
		})
	}
}

func TestTestdataDirectories(t *testing.T) {
	ids := map[string]bool{}
	for _, p := range loadLibrary(t) {
		ids[p.policy.Name] = true
	}
	entries, err := os.ReadDir(testdataDir)
	if err != nil {
		t.Fatalf("read %s: %v", testdataDir, err)
	}
	for _, entry := range entries {
		if !ids[entry.Name()] {
			t.Errorf("%s/%s matches no policy ID", testdataDir, entry.Name())
		}
	}
}

func TestBaselinePolicySet(t *testing.T) {
	data, err := Manifests.ReadFile(policySetFile)
	if err != nil {
		t.Fatalf("read %s: %v", policySetFile, err)
	}
	var set pacv2beta2.PolicySet
	if err := yaml.UnmarshalStrict(data, &set); err != nil {
		t.Fatalf("%s: invalid PolicySet: %v", policySetFile, err)
	}
	if set.APIVersion != pacv2beta2.GroupVersion.String() || set.Kind != "PolicySet" {
		t.Errorf("apiVersion/kind is %s/%s, expected %s/PolicySet", set.APIVersion, set.Kind, pacv2beta2.GroupVersion)
	}
	if set.Name != libraryValue {
		t.Errorf("metadata.name is %q, expected %q", set.Name, libraryValue)
	}
	if set.Spec.Mode != "audit" {
		t.Errorf("spec.mode is %q, expected audit", set.Spec.Mode)
	}
	if !slices.Equal(set.Spec.Filters.Tags, []string{libraryValue}) {
		t.Errorf("spec.filters.tags is %v, expected [%s]", set.Spec.Filters.Tags, libraryValue)
	}
}

// TestInvalidParameterReported checks that policies whose parameter is parsed
// by a built-in function report an unparsable value instead of passing
// everything, because OPA turns a built-in error into an undefined result.
func TestInvalidParameterReported(t *testing.T) {
	cases := []struct {
		id        string
		parameter string
		value     string
		manifest  string
	}{
		{"td.baseline.memory-limit-max", "max_memory_limit", "four gigabytes", "pass-exact-maximum.yaml"},
		{"td.baseline.flux-source-interval", "min_interval", "one minute", "pass-git-repository.yaml"},
	}
	library := loadLibrary(t)
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			index := slices.IndexFunc(library, func(p libraryPolicy) bool { return p.policy.Name == tc.id })
			if index < 0 {
				t.Fatalf("policy %s not found", tc.id)
			}
			p := library[index]
			object, err := readManifest(filepath.Join(testdataDir, tc.id, tc.manifest))
			if err != nil {
				t.Fatal(err)
			}
			parameters := map[string]any{}
			for name, v := range p.defaults {
				parameters[name] = v
			}
			parameters[tc.parameter] = tc.value
			violations, err := evaluate(p, object, parameters)
			if err != nil {
				t.Fatalf("evaluate: %v", err)
			}
			if len(violations) == 0 {
				t.Fatalf("no violations with %s %q, expected one naming the parameter", tc.parameter, tc.value)
			}
			for _, v := range violations {
				msg, _ := v.(map[string]any)["msg"].(string)
				if !strings.Contains(msg, tc.parameter) {
					t.Errorf("msg %q does not name parameter %s", msg, tc.parameter)
				}
			}
		})
	}
}
