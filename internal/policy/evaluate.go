package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// Errors of a Result, to test with errors.Is.
var (
	// ErrTimeout: the evaluation did not finish within Options.Timeout.
	ErrTimeout = errors.New("policy evaluation timed out")
	// ErrNotCompiled: the policy's code does not compile.
	ErrNotCompiled = errors.New("policy is not compiled")
	// ErrInvalidParameters: a parameter value does not match its type, or a
	// required parameter has no value.
	ErrInvalidParameters = errors.New("invalid policy parameters")
	// ErrPanic: the evaluation panicked, and the panic was recovered.
	ErrPanic = errors.New("policy evaluation panicked")
)

// evaluateEntry evaluates one policy on the subject. A panic in the
// evaluation becomes the error of the result, so that no policy can stop
// the manager.
func (e *Engine) evaluateEntry(ctx context.Context, ent *entry, review ast.Value, subject Subject, configs []configEntry) (result Result) {
	start := time.Now()
	result = newResult(ent, subject)
	defer func() {
		if recovered := recover(); recovered != nil {
			result.Occurrences = nil
			result.Err = fmt.Errorf("%w: policy %s: %v", ErrPanic, ent.id, recovered)
		}
		result.Duration = time.Since(start)
	}()

	if ent.compileErr != nil {
		result.Err = fmt.Errorf("%w: policy %s: %w", ErrNotCompiled, ent.id, ent.compileErr)
		return result
	}
	if ent.paramsErr != nil {
		result.Err = fmt.Errorf("%w: policy %s: %w", ErrInvalidParameters, ent.id, ent.paramsErr)
		return result
	}
	params, paramsValue, err := entryParameters(ent, configs, subject)
	if err != nil {
		result.Err = fmt.Errorf("%w: policy %s: %w", ErrInvalidParameters, ent.id, err)
		return result
	}
	result.Parameters = params

	occurrences, err := ent.compiled.eval(ctx, inputValue(review, paramsValue), e.opts.Timeout)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %s: policy %s", ErrTimeout, e.opts.Timeout, ent.id)
		} else {
			err = fmt.Errorf("evaluate policy %s: %w", ent.id, err)
		}
		result.Err = err
		return result
	}
	result.Occurrences = occurrences
	return result
}

// entryParameters returns the merged parameters and their Rego value,
// reusing the prebuilt defaults when no PolicyConfig sets a value for the
// subject.
func entryParameters(ent *entry, configs []configEntry, subject Subject) (map[string]ParameterValue, ast.Value, error) {
	overridden := false
	for i := range configs {
		if _, ok := configs[i].values[ent.id]; ok && configs[i].matches(subject) {
			overridden = true
			break
		}
	}
	if !overridden {
		if missing := missingRequired(ent.params, ent.defaultParams); missing != "" {
			return nil, nil, fmt.Errorf("required parameter %q has no value: set a default in the policy or a PolicyConfig that matches this object", missing)
		}
		return ent.defaultParams, ent.defaultParamsValue, nil
	}
	params, err := mergeParameters(ent.id, ent.params, configs, subject)
	if err != nil {
		return nil, nil, err
	}
	value, err := parametersValue(params)
	if err != nil {
		return nil, nil, fmt.Errorf("convert parameters to a Rego value: %w", err)
	}
	return params, value, nil
}

func missingRequired(declared []declaredParameter, params map[string]ParameterValue) string {
	for _, d := range declared {
		if _, ok := params[d.name]; d.required && !ok {
			return d.name
		}
	}
	return ""
}

func newResult(ent *entry, subject Subject) Result {
	spec := &ent.policy.Spec
	result := Result{
		PolicyID:   ent.id,
		PolicyName: spec.Name,
		Severity:   spec.Severity,
		Category:   spec.Category,
		HowToSolve: spec.HowToSolve,
		Tags:       spec.Tags,
		Enforced:   spec.Enforce == nil || *spec.Enforce,
		Object:     objectRef(subject.Object),
	}
	for _, standard := range spec.Standards {
		result.Standards = append(result.Standards, standard.ID)
	}
	return result
}

func objectOf(object map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: object}
}

func objectRef(obj *unstructured.Unstructured) ObjectRef {
	if obj == nil {
		return ObjectRef{}
	}
	return ObjectRef{
		APIVersion: obj.GetAPIVersion(),
		Kind:       obj.GetKind(),
		Namespace:  obj.GetNamespace(),
		Name:       obj.GetName(),
		UID:        string(obj.GetUID()),
	}
}

// eval runs the prepared query with the input and returns the elements of
// the violation set. It stops the evaluation when timeout passes or ctx is
// cancelled. The cancellation is checked by the evaluator itself, so a
// policy costs no goroutine, and OPA's per-query metrics are not collected.
func (c *Compiled) eval(ctx context.Context, input ast.Value, timeout time.Duration) ([]Occurrence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cancel := topdown.NewCancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		cancel.Cancel()
	})
	defer timer.Stop()
	defer context.AfterFunc(ctx, cancel.Cancel)()
	cache := ruleCaches.Get().(*ruleCache)
	defer func() {
		cache.reset()
		ruleCaches.Put(cache)
	}()
	rs, err := c.query.Eval(ctx,
		rego.EvalParsedInput(input),
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalExternalCancel(cancel),
		rego.EvalVirtualCache(cache))
	if err != nil {
		if topdown.IsCancel(err) {
			if timedOut.Load() {
				return nil, context.DeadlineExceeded
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	term, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("violation evaluated to %T, not a Rego term", rs[0].Expressions[0].Value)
	}
	return occurrencesOf(term.Value), nil
}

// keepTerm is the result conversion of every prepared query: it keeps the
// Rego value, which occurrencesOf reads without a detour through Go maps.
func keepTerm(term *ast.Term, _ *rego.EvalContext) (any, error) {
	return term, nil
}

var (
	msgKey              = ast.InternedTerm("msg")
	violatingKeyKey     = ast.InternedTerm("violating_key")
	recommendedValueKey = ast.InternedTerm("recommended_value")
)

// occurrencesOf reads the value of the violation rule: a set (or array) of
// objects with msg, violating_key and recommended_value, or of strings. A
// violation rule that is a boolean yields one occurrence when true.
func occurrencesOf(value ast.Value) []Occurrence {
	switch v := value.(type) {
	case ast.Set:
		occurrences := make([]Occurrence, 0, v.Len())
		v.Foreach(func(element *ast.Term) {
			occurrences = append(occurrences, occurrenceOf(element.Value))
		})
		return occurrences
	case *ast.Array:
		occurrences := make([]Occurrence, 0, v.Len())
		v.Foreach(func(element *ast.Term) {
			occurrences = append(occurrences, occurrenceOf(element.Value))
		})
		return occurrences
	case ast.Boolean:
		if v {
			return []Occurrence{{Message: "violation is true"}}
		}
		return nil
	case ast.Null:
		return nil
	default:
		return []Occurrence{occurrenceOf(v)}
	}
}

func occurrenceOf(element ast.Value) Occurrence {
	switch v := element.(type) {
	case ast.String:
		return Occurrence{Message: string(v)}
	case ast.Object:
		var occurrence Occurrence
		if rv := v.Get(recommendedValueKey); rv != nil {
			occurrence.RecommendedValue = goValue(rv.Value)
		}
		switch msg := v.Get(msgKey); {
		case msg == nil:
			occurrence.Message = jsonText(goValue(v))
		case isString(msg.Value):
			occurrence.Message = string(msg.Value.(ast.String))
		default:
			occurrence.Message = jsonText(goValue(msg.Value))
		}
		if key := v.Get(violatingKeyKey); key != nil && isString(key.Value) {
			occurrence.ViolatingKey = string(key.Value.(ast.String))
		}
		return occurrence
	default:
		return Occurrence{Message: jsonText(goValue(v))}
	}
}

func isString(v ast.Value) bool {
	_, ok := v.(ast.String)
	return ok
}

// goValue converts a Rego value to the Go value encoding/json would decode
// from its JSON form. Values without a JSON form, which a violation rule
// cannot produce, become their Rego text.
func goValue(v ast.Value) any {
	out, err := ast.JSON(v)
	if err != nil {
		return v.String()
	}
	return out
}

func jsonText(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(data)
}

// entryStatus computes the Ready condition of a stored policy. Checks run in
// order and the first failure decides: compile error or missing violation
// rule, invalid parameter defaults, a required parameter that nothing sets,
// then a provider that this operator does not evaluate.
func entryStatus(ent *entry, configs []configEntry) PolicyStatus {
	var compileErr *CompileError
	switch {
	case errors.As(ent.compileErr, &compileErr):
		return PolicyStatus{Reason: compileErr.Reason, Message: compileErr.Message}
	case ent.compileErr != nil:
		return PolicyStatus{Reason: pacv2beta3.PolicyCompileErrorReason, Message: ent.compileErr.Error()}
	case ent.paramsErr != nil:
		return PolicyStatus{Reason: pacv2beta3.PolicyInvalidParametersReason, Message: ent.paramsErr.Error()}
	}
	if missing := unsatisfiedRequired(ent.id, ent.params, configs); len(missing) > 0 {
		return PolicyStatus{
			Reason: pacv2beta3.PolicyInvalidParametersReason,
			Message: fmt.Sprintf("required parameters %q have no default and no PolicyConfig sets them, so the policy reports an error for every object",
				missing),
		}
	}
	if isTerraform(ent.policy) {
		return PolicyStatus{
			Reason: pacv2beta3.PolicyProviderNotEvaluatedReason,
			Message: fmt.Sprintf("the code compiles with Rego %s, but this operator receives no Terraform plans, so the policy is not evaluated",
				ent.compiled.RegoVersion),
		}
	}
	return PolicyStatus{
		Ready:   true,
		Reason:  pacv2beta3.PolicyCompiledReason,
		Message: fmt.Sprintf("compiled with Rego %s as package %s", ent.compiled.RegoVersion, ent.compiled.Package),
	}
}
