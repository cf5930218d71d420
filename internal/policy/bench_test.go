package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/config/policies"
	"github.com/trusted-delivery/trusted-delivery/internal/policy/policytest"
)

// Benchmarks of Evaluate on a typical Deployment and on a ~200 KiB one, for
// 1, 10, 50 and 150 active policies, against two baselines:
//
//   - floor: the same prepared queries evaluated one after the other with
//     OPA directly, with the input converted once per request and no
//     matching, parameter merging or result building;
//   - naive: every policy parsed, compiled and evaluated on every request.
//
// Run with: go test ./internal/policy -run '^$' -bench . -benchtime=2x

var benchPolicyCounts = []int{1, 10, 50, 150}

// benchPolicies returns n policies built from the library manifests and the
// test data manifest, reused under new IDs when there are fewer than n. Every
// policy targets every kind, so all n evaluate on the benchmark object.
func benchPolicies(b *testing.B, n int) []*pacv2beta3.Policy {
	b.Helper()
	base := benchLibrary(b)
	policies := make([]*pacv2beta3.Policy, 0, n)
	for i := range n {
		p := base[i%len(base)].DeepCopy()
		if i >= len(base) {
			p.Name = fmt.Sprintf("%s-%d", p.Name, i)
		}
		p.Spec.ID = ""
		p.Generation = 1
		p.Spec.Targets = pacv2beta3.PolicyTargets{}
		p.Spec.Exclude = pacv2beta3.PolicyExclusions{}
		policies = append(policies, p)
	}
	return policies
}

// benchLibrary loads the Kubernetes policies of the baseline library and
// the test data manifest that compile and need no PolicyConfig, so that every
// benchmark evaluation runs Rego.
func benchLibrary(b *testing.B) []*pacv2beta3.Policy {
	b.Helper()
	paths, err := fs.Glob(policies.Manifests, "*.yaml")
	if err != nil {
		b.Fatal(err)
	}
	manifests := make([][]byte, 0, len(paths)+1)
	for _, path := range paths {
		data, err := policies.Manifests.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		manifests = append(manifests, data)
	}
	testdata, err := os.ReadFile("testdata/containers-running-as-root.yaml")
	if err != nil {
		b.Fatal(err)
	}
	manifests = append(manifests, testdata)

	var library []*pacv2beta3.Policy
	for _, data := range manifests {
		p := &pacv2beta3.Policy{}
		if err := yaml.Unmarshal(data, p); err != nil || p.Kind != "Policy" {
			continue
		}
		if status := NewEngine(Options{}).UpsertPolicy(p); !status.Ready {
			continue
		}
		library = append(library, p)
	}
	if len(library) == 0 {
		b.Fatal("no usable policy manifests found")
	}
	return library
}

type benchObject struct {
	name string
	obj  *unstructured.Unstructured
}

func benchObjects(b *testing.B) []benchObject {
	typical, _ := policytest.Deployment(2, 5)
	// 40 containers of 60 env vars each is about 200 KiB of JSON.
	large, size := policytest.Deployment(40, 60)
	if size < 180<<10 || size > 240<<10 {
		b.Fatalf("large Deployment is %d bytes, want about 200 KiB", size)
	}
	return []benchObject{{"typical", typical}, {"200KiB", large}}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, object := range benchObjects(b) {
		for _, n := range benchPolicyCounts {
			b.Run(fmt.Sprintf("%s/policies=%d", object.name, n), func(b *testing.B) {
				e := NewEngine(Options{})
				for _, p := range benchPolicies(b, n) {
					e.UpsertPolicy(p)
				}
				review := ReviewFromObject(object.obj)
				subject := Subject{Object: object.obj}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					results := e.Evaluate(ctx, ModeAdmission, review, subject)
					if len(results) != n {
						b.Fatalf("Evaluate() returned %d results, want %d", len(results), n)
					}
					for _, r := range results {
						if r.Err != nil {
							b.Fatalf("policy %s: %v", r.PolicyID, r.Err)
						}
					}
				}
			})
		}
	}
}

func BenchmarkEvaluateFloor(b *testing.B) {
	for _, object := range benchObjects(b) {
		for _, n := range benchPolicyCounts {
			b.Run(fmt.Sprintf("%s/policies=%d", object.name, n), func(b *testing.B) {
				e := NewEngine(Options{})
				for _, p := range benchPolicies(b, n) {
					e.UpsertPolicy(p)
				}
				entries := e.state.Load().active[ModeAdmission]
				review := ReviewFromObject(object.obj)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					reviewVal, err := reviewValue(review)
					if err != nil {
						b.Fatal(err)
					}
					for _, ent := range entries {
						input := inputValue(reviewVal, ent.defaultParamsValue)
						if _, err := ent.compiled.query.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

func BenchmarkEvaluateNaive(b *testing.B) {
	for _, object := range benchObjects(b) {
		for _, n := range benchPolicyCounts {
			b.Run(fmt.Sprintf("%s/policies=%d", object.name, n), func(b *testing.B) {
				policies := benchPolicies(b, n)
				review := ReviewFromObject(object.obj)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					for _, p := range policies {
						naiveEvaluate(ctx, b, p, review, object.obj)
					}
				}
			})
		}
	}
}

// naiveEvaluate parses, compiles and evaluates one policy from scratch, as an
// engine without a cache would on every request.
func naiveEvaluate(ctx context.Context, b *testing.B, p *pacv2beta3.Policy, review Review, obj *unstructured.Unstructured) {
	if !AppliesTo(p, obj) {
		return
	}
	compiled, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	declared, err := declareParameters(p)
	if err != nil {
		b.Fatal(err)
	}
	params, err := mergeParameters(PolicyID(p), declared, nil, Subject{Object: obj})
	if err != nil {
		b.Fatal(err)
	}
	paramsVal, err := parametersValue(params)
	if err != nil {
		b.Fatal(err)
	}
	reviewVal, err := reviewValue(review)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := compiled.eval(ctx, inputValue(reviewVal, paramsVal), DefaultTimeout); err != nil {
		b.Fatal(err)
	}
}
