package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/config/policies"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// loadLibrary returns the Kubernetes policies of config/policies that
// compile and need no PolicyConfig, so every measured evaluation runs Rego.
func loadLibrary() ([]*pacv2beta3.Policy, error) {
	paths, err := fs.Glob(policies.Manifests, "*.yaml")
	if err != nil {
		return nil, err
	}
	var library []*pacv2beta3.Policy
	for _, path := range paths {
		data, err := policies.Manifests.ReadFile(path)
		if err != nil {
			return nil, err
		}
		p := &pacv2beta3.Policy{}
		if err := yaml.Unmarshal(data, p); err != nil || p.Kind != "Policy" {
			continue
		}
		if status := policy.NewEngine(policy.Options{}).UpsertPolicy(p); !status.Ready {
			continue
		}
		library = append(library, p)
	}
	if len(library) == 0 {
		return nil, fmt.Errorf("no usable policy in config/policies")
	}
	return library, nil
}

// benchPolicies returns n policies from the library, reused under new IDs
// when it has fewer. Their targets and exclusions are cleared so that all n
// apply to the benchmark Deployment.
func benchPolicies(library []*pacv2beta3.Policy, n int) []*pacv2beta3.Policy {
	result := make([]*pacv2beta3.Policy, 0, n)
	for i := range n {
		p := library[i%len(library)].DeepCopy()
		if i >= len(library) {
			p.Name = fmt.Sprintf("%s-%d", p.Name, i)
		}
		p.Spec.ID = ""
		p.Generation = 1
		p.Spec.Targets = pacv2beta3.PolicyTargets{}
		p.Spec.Exclude = pacv2beta3.PolicyExclusions{}
		result = append(result, p)
	}
	return result
}

// prepared is one policy compiled for the baselines.
type prepared struct {
	query      rego.PreparedEvalQuery
	parameters ast.Value
}

// regoSource is what the baselines need to compile a policy.
type regoSource struct {
	id, code, query string
	version         ast.RegoVersion
	parameters      ast.Value
}

func sources(list []*pacv2beta3.Policy) ([]regoSource, error) {
	result := make([]regoSource, 0, len(list))
	for _, p := range list {
		compiled, err := policy.Compile(p)
		if err != nil {
			return nil, err
		}
		version := ast.RegoV1
		if compiled.RegoVersion == ast.RegoV0.String() {
			version = ast.RegoV0
		}
		params := map[string]any{}
		for _, param := range p.Spec.Parameters {
			value, set, err := policy.DecodeParameterValue(param.Value)
			if err != nil {
				return nil, err
			}
			if set {
				params[param.Name] = value
			}
		}
		paramsValue, err := ast.InterfaceToValue(params)
		if err != nil {
			return nil, err
		}
		result = append(result, regoSource{
			id:         policy.PolicyID(p),
			code:       p.Spec.Code,
			query:      "data." + compiled.Package + "." + policy.ViolationRule,
			version:    version,
			parameters: paramsValue,
		})
	}
	return result, nil
}

func (s regoSource) prepare(ctx context.Context) (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query(s.query),
		rego.Module(s.id+".rego", s.code),
		rego.SetRegoVersion(s.version),
	).PrepareForEval(ctx)
}

// reviewInput returns input.review of a CREATE of the object, converted to
// a Rego value once per request as the engine does.
func reviewInput(obj *unstructured.Unstructured) (ast.Value, error) {
	// The webhook decodes the object from JSON; so does the floor, so both
	// see float64 numbers.
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	var object map[string]any
	if err := json.Unmarshal(raw, &object); err != nil {
		return nil, err
	}
	gvk := obj.GroupVersionKind()
	return ast.InterfaceToValue(map[string]any{
		"operation": "CREATE",
		"userInfo":  map[string]any{"username": "bench"},
		"kind":      map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
		"namespace": obj.GetNamespace(),
		"name":      obj.GetName(),
		"object":    object,
		"dryRun":    false,
	})
}

func input(review, parameters ast.Value) ast.Value {
	return ast.NewObject(
		ast.Item(ast.StringTerm("review"), ast.NewTerm(review)),
		ast.Item(ast.StringTerm("parameters"), ast.NewTerm(parameters)),
	)
}

// measureFloor evaluates the prepared queries one after the other, with the
// review converted once per request: no HTTP, no JSON decoding of the
// request, no matching, parameter merging or result building.
func measureFloor(list []*pacv2beta3.Policy, obj *unstructured.Unstructured, requests int) (latencies, error) {
	ctx := context.Background()
	srcs, err := sources(list)
	if err != nil {
		return nil, err
	}
	queries := make([]prepared, len(srcs))
	for i, src := range srcs {
		query, err := src.prepare(ctx)
		if err != nil {
			return nil, fmt.Errorf("prepare policy %s: %w", src.id, err)
		}
		queries[i] = prepared{query: query, parameters: src.parameters}
	}
	once := func() error {
		review, err := reviewInput(obj)
		if err != nil {
			return err
		}
		for _, q := range queries {
			if _, err := q.query.Eval(ctx, rego.EvalParsedInput(input(review, q.parameters))); err != nil {
				return err
			}
		}
		return nil
	}
	return timeRequests(requests, once)
}

// measureNaive parses, compiles and evaluates every policy on every request,
// as an engine without a cache would.
func measureNaive(list []*pacv2beta3.Policy, obj *unstructured.Unstructured, requests int) (latencies, error) {
	ctx := context.Background()
	srcs, err := sources(list)
	if err != nil {
		return nil, err
	}
	once := func() error {
		review, err := reviewInput(obj)
		if err != nil {
			return err
		}
		for _, src := range srcs {
			query, err := src.prepare(ctx)
			if err != nil {
				return err
			}
			if _, err := query.Eval(ctx, rego.EvalParsedInput(input(review, src.parameters))); err != nil {
				return err
			}
		}
		return nil
	}
	return timeRequests(requests, once)
}

// timeRequests runs a tenth of the requests to warm up, then times each.
func timeRequests(requests int, once func() error) (latencies, error) {
	for range max(requests/10, 1) {
		if err := once(); err != nil {
			return nil, err
		}
	}
	result := make(latencies, 0, requests)
	for range requests {
		start := time.Now()
		if err := once(); err != nil {
			return nil, err
		}
		result = append(result, time.Since(start))
	}
	return result, nil
}
