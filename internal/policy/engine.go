package policy

import (
	"context"
	"crypto/sha256"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// DefaultTimeout is the default deadline of one policy evaluation.
const DefaultTimeout = 2 * time.Second

// Options configures an Engine.
type Options struct {
	// Timeout is the deadline of one policy on one object. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Parallelism is the maximum number of policies evaluated at once for
	// one request. Zero means GOMAXPROCS.
	Parallelism int
}

// PolicyStatus is the engine's view of a policy, for its Ready condition.
type PolicyStatus struct {
	Ready bool
	// Reason is one of the Policy Ready reasons in api/pac/v2beta3.
	Reason  string
	Message string
}

// Engine holds the compiled policies, the PolicySets and the PolicyConfigs,
// and evaluates objects against them. It is safe for concurrent use: the
// controllers update it while the webhook and the audit evaluate.
type Engine struct {
	opts Options

	// mu serializes updates. Readers load state without locking.
	mu    sync.Mutex
	state atomic.Pointer[engineState]

	synced atomic.Bool
	// compilations counts calls of the compiler, so that tests can tell a
	// cache hit from a recompile.
	compilations atomic.Int64
}

// engineState is an immutable snapshot; every update builds a new one.
type engineState struct {
	policies map[string]*entry
	sets     []pacv2beta2.PolicySet
	configs  []configEntry
	// active lists the entries active in each mode, sorted by policy ID.
	active map[Mode][]*entry
}

// entry is one policy with its compiled code. It is never modified after it
// is stored in a state.
type entry struct {
	id     string
	policy *pacv2beta3.Policy
	key    cacheKey

	compiled   *Compiled
	compileErr error

	params    []declaredParameter
	paramsErr error
	// defaultParams and defaultParamsValue are the parameters of an object
	// that no PolicyConfig matches, built once.
	defaultParams      map[string]ParameterValue
	defaultParamsValue ast.Value
}

// cacheKey identifies what a compilation depends on. The code hash makes
// objects without a generation, as the CLI reads them, cache too.
type cacheKey struct {
	generation int64
	codeHash   [sha256.Size]byte
}

// NewEngine returns an engine without policies.
func NewEngine(opts Options) *Engine {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	e := &Engine{opts: opts}
	e.state.Store(newState(map[string]*entry{}, nil, nil))
	return e
}

// Synced reports whether the controllers have loaded every Policy, PolicySet
// and PolicyConfig at least once, so that evaluations see the full set.
func (e *Engine) Synced() bool {
	return e.synced.Load()
}

// MarkSynced records that the initial load is complete.
func (e *Engine) MarkSynced() {
	e.synced.Store(true)
}

// UpsertPolicy stores the policy and returns its status. It compiles the code
// only when the generation or the code changed since the last call for the
// same ID.
func (e *Engine) UpsertPolicy(p *pacv2beta3.Policy) PolicyStatus {
	e.mu.Lock()
	defer e.mu.Unlock()

	current := e.state.Load()
	id := PolicyID(p)
	key := cacheKey{generation: p.Generation, codeHash: sha256.Sum256([]byte(p.Spec.Code))}

	next := &entry{id: id, policy: p.DeepCopy(), key: key}
	if old, ok := current.policies[id]; ok && old.key == key {
		next.compiled, next.compileErr = old.compiled, old.compileErr
	} else {
		e.compilations.Add(1)
		next.compiled, next.compileErr = Compile(p)
	}
	next.params, next.paramsErr = declareParameters(p)
	if next.paramsErr == nil {
		next.defaultParams, next.defaultParamsValue, next.paramsErr = defaultParameters(next.params)
	}

	policies := make(map[string]*entry, len(current.policies)+1)
	for k, v := range current.policies {
		policies[k] = v
	}
	policies[id] = next
	e.state.Store(newState(policies, current.sets, current.configs))
	return entryStatus(next, current.configs)
}

// RemovePolicy removes the policy with the ID from the engine.
func (e *Engine) RemovePolicy(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()

	current := e.state.Load()
	if _, ok := current.policies[id]; !ok {
		return
	}
	policies := make(map[string]*entry, len(current.policies))
	for k, v := range current.policies {
		if k != id {
			policies[k] = v
		}
	}
	e.state.Store(newState(policies, current.sets, current.configs))
}

// SetPolicySets replaces the PolicySets that select the active policies of
// each mode.
func (e *Engine) SetPolicySets(sets []pacv2beta2.PolicySet) {
	e.mu.Lock()
	defer e.mu.Unlock()

	copied := make([]pacv2beta2.PolicySet, len(sets))
	for i := range sets {
		sets[i].DeepCopyInto(&copied[i])
	}
	current := e.state.Load()
	e.state.Store(newState(current.policies, copied, current.configs))
}

// SetPolicyConfigs replaces the PolicyConfigs whose values override policy
// parameters.
func (e *Engine) SetPolicyConfigs(configs []pacv2beta3.PolicyConfig) {
	e.mu.Lock()
	defer e.mu.Unlock()

	current := e.state.Load()
	e.state.Store(newState(current.policies, current.sets, newConfigEntries(configs)))
}

// Status returns the status of the stored policy with the ID, and false when
// the engine does not have it.
func (e *Engine) Status(id string) (PolicyStatus, bool) {
	state := e.state.Load()
	ent, ok := state.policies[id]
	if !ok {
		return PolicyStatus{}, false
	}
	return entryStatus(ent, state.configs), true
}

// ActivePolicies returns the stored policies that are active in mode, sorted
// by ID.
func (e *Engine) ActivePolicies(mode Mode) []pacv2beta3.Policy {
	entries := e.state.Load().active[mode]
	policies := make([]pacv2beta3.Policy, len(entries))
	for i, ent := range entries {
		policies[i] = *ent.policy
	}
	return policies
}

// compileCount returns how many times the engine compiled a policy.
func (e *Engine) compileCount() int64 {
	return e.compilations.Load()
}

func newState(policies map[string]*entry, sets []pacv2beta2.PolicySet, configs []configEntry) *engineState {
	s := &engineState{
		policies: policies,
		sets:     sets,
		configs:  configs,
		active:   make(map[Mode][]*entry, len(Modes)),
	}
	ids := make([]string, 0, len(policies))
	for id := range policies {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, mode := range Modes {
		modeSets := setsOfMode(mode, sets)
		for _, id := range ids {
			if isActive(mode, policies[id].policy, modeSets) {
				s.active[mode] = append(s.active[mode], policies[id])
			}
		}
	}
	return s
}

func defaultParameters(declared []declaredParameter) (map[string]ParameterValue, ast.Value, error) {
	params := make(map[string]ParameterValue, len(declared))
	for _, d := range declared {
		if d.hasDefault {
			params[d.name] = ParameterValue{Value: d.value}
		}
	}
	value, err := parametersValue(params)
	if err != nil {
		return nil, nil, err
	}
	return params, value, nil
}

// Evaluate checks the subject against every policy that is active in mode and
// whose targets match the subject's object, in parallel with at most
// Options.Parallelism policies at once and a deadline of Options.Timeout
// each. It returns one Result per matching policy, sorted by policy ID. A
// policy that does not compile, has invalid parameters, fails or times out
// yields a Result with Err set, never a violation. When subject.Object is
// nil, the review's object is matched.
func (e *Engine) Evaluate(ctx context.Context, mode Mode, review Review, subject Subject) []Result {
	if subject.Object == nil && review.Object != nil {
		subject.Object = objectOf(review.Object)
	}
	if subject.Object == nil {
		return nil
	}
	state := e.state.Load()
	facts := factsOf(subject.Object)
	var matching []*entry
	for _, ent := range state.active[mode] {
		if facts.matchedBy(ent.policy) {
			matching = append(matching, ent)
		}
	}
	if len(matching) == 0 {
		return nil
	}

	results := make([]Result, len(matching))
	reviewVal, err := reviewValue(review)
	if err != nil {
		for i, ent := range matching {
			results[i] = newResult(ent, subject)
			results[i].Err = err
		}
		return results
	}

	eval := func(i int) {
		results[i] = e.evaluateEntry(ctx, matching[i], reviewVal, subject, state.configs)
	}
	workers := min(e.opts.Parallelism, len(matching))
	if workers <= 1 {
		for i := range matching {
			eval(i)
		}
		return results
	}
	// Workers take the next policy from a shared counter; the calling
	// goroutine is one of them.
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(matching) {
				return
			}
			eval(i)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return results
}
