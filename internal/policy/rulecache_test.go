package policy

import (
	"context"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func TestRuleCache(t *testing.T) {
	ref := func(s string) ast.Ref { return ast.MustParseRef(s) }
	term := ast.StringTerm

	t.Run("get what was put", func(t *testing.T) {
		c := newRuleCache()
		c.Put(ref("data.p.pod"), term("a"))
		c.Put(ref(`data.p.f["x"]`), term("b"))
		c.Put(ref(`data.p.f["y"]`), nil)
		if v, undefined := c.Get(ref("data.p.pod")); undefined || !v.Equal(term("a")) {
			t.Errorf("Get(data.p.pod) = %v, %v, want \"a\", false", v, undefined)
		}
		if v, undefined := c.Get(ref(`data.p.f["x"]`)); undefined || !v.Equal(term("b")) {
			t.Errorf(`Get(data.p.f["x"]) = %v, %v, want "b", false`, v, undefined)
		}
		if v, undefined := c.Get(ref(`data.p.f["y"]`)); !undefined || v != nil {
			t.Errorf(`Get(data.p.f["y"]) = %v, %v, want nil, true (undefined)`, v, undefined)
		}
		if v, undefined := c.Get(ref("data.p.other")); undefined || v != nil {
			t.Errorf("Get(data.p.other) = %v, %v, want nil, false (not cached)", v, undefined)
		}
		if got := len(c.Keys()); got != 2 {
			t.Errorf("Keys() has %d refs, want the 2 with a value", got)
		}
	})

	t.Run("put overwrites", func(t *testing.T) {
		c := newRuleCache()
		c.Put(ref("data.p.x"), term("old"))
		c.Put(ref("data.p.x"), term("new"))
		if v, _ := c.Get(ref("data.p.x")); !v.Equal(term("new")) {
			t.Errorf("Get() = %v, want \"new\"", v)
		}
	})

	t.Run("a scope hides outer entries and drops its own", func(t *testing.T) {
		c := newRuleCache()
		c.Put(ref("data.p.x"), term("outer"))
		c.Push()
		if v, undefined := c.Get(ref("data.p.x")); v != nil || undefined {
			t.Errorf("Get() in a new scope = %v, %v, want nothing cached", v, undefined)
		}
		c.Put(ref("data.p.x"), term("inner"))
		c.Pop()
		if v, _ := c.Get(ref("data.p.x")); !v.Equal(term("outer")) {
			t.Errorf("Get() after Pop = %v, want \"outer\"", v)
		}
		c.Push()
		if v, _ := c.Get(ref("data.p.x")); v != nil {
			t.Errorf("Get() in a reopened scope = %v, want the inner entry forgotten", v)
		}
	})

	t.Run("the caller may reuse the ref it put", func(t *testing.T) {
		c := newRuleCache()
		r := ref(`data.p.f["x"]`)
		c.Put(r, term("x"))
		r[len(r)-1] = term("y")
		if v, _ := c.Get(ref(`data.p.f["x"]`)); !v.Equal(term("x")) {
			t.Errorf(`Get(data.p.f["x"]) = %v, want "x"`, v)
		}
		if v, _ := c.Get(ref(`data.p.f["y"]`)); v != nil {
			t.Errorf(`Get(data.p.f["y"]) = %v, want nothing cached`, v)
		}
	})

	t.Run("reset empties every scope", func(t *testing.T) {
		c := newRuleCache()
		c.Put(ref("data.p.x"), term("x"))
		c.Push()
		c.Put(ref("data.p.y"), term("y"))
		c.reset()
		for _, r := range []string{"data.p.x", "data.p.y"} {
			if v, undefined := c.Get(ref(r)); v != nil || undefined {
				t.Errorf("Get(%s) after reset = %v, %v, want nothing cached", r, v, undefined)
			}
		}
	})
}

// A module whose result depends on the cache: complete rules and functions
// read more than once, functions called with several arguments, undefined
// results read through not, and with statements that replace the input.
const cachedRulesModule = `package cached

kind := input.review.object.kind

names contains c.name if some c in input.review.object.spec.containers

shout(name) := upper_name if {
	name != "skip"
	upper_name := upper(name)
}

flagged(name) if startswith(name, "side")

other_kind := k if {
	k := kind with input.review.object.kind as "Other"
}

violation contains msg if {
	some name in names
	not flagged(name)
	msg := sprintf("%s %s %s", [kind, shout(name), other_kind])
}

violation contains msg if {
	some name in names
	flagged(name)
	not shout(name)
	msg := "never"
}

violation contains msg if {
	some name in names
	flagged(name)
	msg := sprintf("%s flagged in %s", [name, kind])
}
`

// TestRuleCacheMatchesOPA checks that evaluating with the reused
// rule cache gives the results of OPA's own cache, across evaluations that
// reuse one cache.
func TestRuleCacheMatchesOPA(t *testing.T) {
	compiled, err := compileCode(context.Background(), "cached", cachedRulesModule)
	if err != nil {
		t.Fatal(err)
	}
	reference, err := rego.New(
		rego.Query("data.cached.violation"),
		rego.Module("cached.rego", cachedRulesModule),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inputs := []map[string]any{
		deploymentInput("Deployment", "app", "sidecar", "skip"),
		deploymentInput("StatefulSet", "db", "side-db"),
		deploymentInput("Deployment", "app", "sidecar", "skip"),
	}
	for i, in := range inputs {
		value, err := ast.InterfaceToValue(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := compiled.eval(context.Background(), value, DefaultTimeout)
		if err != nil {
			t.Fatalf("input %d: eval error = %v", i, err)
		}
		rs, err := reference.Eval(context.Background(), rego.EvalInput(in))
		if err != nil {
			t.Fatalf("input %d: reference eval error = %v", i, err)
		}
		want := map[string]bool{}
		for _, msg := range rs[0].Expressions[0].Value.([]any) {
			want[msg.(string)] = true
		}
		gotSet := map[string]bool{}
		for _, o := range got {
			gotSet[o.Message] = true
		}
		if len(want) == 0 {
			t.Fatalf("input %d: OPA finds no violations, want an input that exercises the cache", i)
		}
		if !reflect.DeepEqual(gotSet, want) {
			t.Errorf("input %d: violations = %v, OPA's cache gives %v", i, gotSet, want)
		}
	}
}

func deploymentInput(kind string, names ...string) map[string]any {
	containers := make([]any, 0, len(names))
	for _, n := range names {
		containers = append(containers, map[string]any{"name": n})
	}
	return map[string]any{
		"review": map[string]any{
			"object": map[string]any{
				"kind": kind,
				"spec": map[string]any{"containers": containers},
			},
		},
		"parameters": map[string]any{},
	}
}
