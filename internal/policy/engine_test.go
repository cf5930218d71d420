package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	pacv2beta2 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta2"
	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

func evaluateObject(e *Engine, mode Mode, subject Subject) []Result {
	return e.Evaluate(context.Background(), mode, ReviewFromObject(subject.Object), subject)
}

func TestEvaluateWeaveLibraryPolicy(t *testing.T) {
	e := NewEngine(Options{})
	p := loadPolicyFile(t, "testdata/containers-running-as-root.yaml")
	if status := e.UpsertPolicy(p); !status.Ready {
		t.Fatalf("UpsertPolicy() = %+v, want Ready", status)
	}

	obj := deployment("apps", "web", nil, "app", "sidecar")
	containers := containersOf(obj)
	containers[1].(map[string]any)["securityContext"] = map[string]any{"runAsNonRoot": true}
	if err := unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}

	results := evaluateObject(e, ModeAdmission, Subject{Object: obj})
	if len(results) != 1 {
		t.Fatalf("Evaluate() returned %d results, want 1", len(results))
	}
	r := results[0]
	if r.Err != nil {
		t.Fatalf("Result.Err = %v", r.Err)
	}
	if !r.Violated() || len(r.Occurrences) != 1 {
		t.Fatalf("Occurrences = %+v, want one for container app", r.Occurrences)
	}
	occurrence := r.Occurrences[0]
	if want := "container app must set securityContext.runAsNonRoot to true; found null"; occurrence.Message != want {
		t.Errorf("Message = %q, want %q", occurrence.Message, want)
	}
	if want := "spec.template.spec.containers[0].securityContext.runAsNonRoot"; occurrence.ViolatingKey != want {
		t.Errorf("ViolatingKey = %q, want %q", occurrence.ViolatingKey, want)
	}
	if occurrence.RecommendedValue != true {
		t.Errorf("RecommendedValue = %v, want true", occurrence.RecommendedValue)
	}
	if r.PolicyID != "weave.policies.containers-running-as-root" {
		t.Errorf("PolicyID = %q, want the metadata.name", r.PolicyID)
	}
	if r.Severity != "high" {
		t.Errorf("Severity = %q, want high", r.Severity)
	}
	if r.Category != "weave.categories.pod-security" {
		t.Errorf("Category = %q, want weave.categories.pod-security", r.Category)
	}
	if !r.Enforced {
		t.Errorf("Enforced = false, want true when spec.enforce is unset")
	}
	if len(r.Standards) != 2 || r.Standards[0] != "weave.standards.cis-benchmark" {
		t.Errorf("Standards = %v, want the two standard IDs", r.Standards)
	}
	if r.Object != (ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "web"}) {
		t.Errorf("Object = %+v", r.Object)
	}
	if got := r.Parameters["run_as_non_root"]; got != (ParameterValue{Value: true}) {
		t.Errorf("Parameters[run_as_non_root] = %+v, want the default true", got)
	}

	// A namespace excluded through a PolicyConfig parameter passes.
	e.SetPolicyConfigs([]pacv2beta3.PolicyConfig{{
		ObjectMeta: metav1.ObjectMeta{Name: "exclude-apps"},
		Spec: pacv2beta3.PolicyConfigSpec{
			Match: pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}},
			Config: map[string]pacv2beta3.PolicyConfigConfig{p.Name: {Parameters: map[string]apiextensionsv1.JSON{
				"exclude_namespaces": *jsonValue(t, []string{"apps"}),
			}}},
		},
	}})
	results = evaluateObject(e, ModeAdmission, Subject{Object: obj})
	if len(results) != 1 || results[0].Err != nil || results[0].Violated() {
		t.Fatalf("Evaluate() with the namespace excluded = %+v, want a passing result", results)
	}
	if got := results[0].Parameters["exclude_namespaces"].ConfigRef; got != "exclude-apps" {
		t.Errorf("ConfigRef of exclude_namespaces = %q, want exclude-apps", got)
	}
}

// containersOf returns the containers of a Deployment built by deployment.
func containersOf(obj *unstructured.Unstructured) []any {
	containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	return containers
}

func TestEvaluateOccurrenceShapes(t *testing.T) {
	tests := []struct {
		name string
		code string
		want []Occurrence
	}{
		{
			name: "set of strings",
			code: "package s\nviolation contains \"plain message\" if true\n",
			want: []Occurrence{{Message: "plain message"}},
		},
		{
			name: "set of objects",
			code: `package o
violation contains {"msg": "m", "violating_key": "spec.replicas", "recommended_value": 1} if true`,
			want: []Occurrence{{Message: "m", ViolatingKey: "spec.replicas", RecommendedValue: json.Number("1")}},
		},
		{
			name: "empty set",
			code: "package e\nviolation contains \"x\" if false\n",
			want: nil,
		},
		{
			name: "uses input and parameters",
			code: `package i
violation contains msg if {
  input.review.object.spec.replicas > input.parameters.max
  msg := sprintf("%s has %d replicas", [input.review.name, input.review.object.spec.replicas])
}`,
			want: []Occurrence{{Message: "web has 3 replicas"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(Options{})
			p := newPolicy("p", tt.code)
			p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "max", Type: "integer", Value: jsonValue(t, 2)}}
			if status := e.UpsertPolicy(p); !status.Ready {
				t.Fatalf("UpsertPolicy() = %+v", status)
			}
			results := evaluateObject(e, ModeAudit, Subject{Object: deployment("apps", "web", nil, "app")})
			if len(results) != 1 || results[0].Err != nil {
				t.Fatalf("Evaluate() = %+v, want one result without error", results)
			}
			got := results[0].Occurrences
			if len(got) != len(tt.want) {
				t.Fatalf("Occurrences = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Message != tt.want[i].Message || got[i].ViolatingKey != tt.want[i].ViolatingKey ||
					jsonText(got[i].RecommendedValue) != jsonText(tt.want[i].RecommendedValue) {
					t.Errorf("Occurrences[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// slowPolicy returns a policy that counts 25 million elements, which takes
// far longer than the deadlines of the tests that use it.
func slowPolicy() *pacv2beta3.Policy {
	return newPolicy("slow", `package slow
violation contains "counted" if {
  n := count([1 | some a in numbers.range(1, 5000); some b in numbers.range(1, 5000)])
  n > 0
}`)
}

func TestEvaluateTimeout(t *testing.T) {
	e := NewEngine(Options{Timeout: 50 * time.Millisecond})
	slow := slowPolicy()
	if status := e.UpsertPolicy(slow); !status.Ready {
		t.Fatalf("UpsertPolicy() = %+v", status)
	}
	e.UpsertPolicy(newPolicy("fast", alwaysViolates("fast")))

	start := time.Now()
	results := evaluateObject(e, ModeAdmission, Subject{Object: deployment("apps", "web", nil, "app")})
	elapsed := time.Since(start)

	if len(results) != 2 {
		t.Fatalf("Evaluate() returned %d results, want 2", len(results))
	}
	fast, slowResult := results[0], results[1]
	if !errors.Is(slowResult.Err, ErrTimeout) {
		t.Errorf("slow Result.Err = %v, want ErrTimeout", slowResult.Err)
	}
	if slowResult.Violated() {
		t.Errorf("slow policy reported a violation after timing out")
	}
	if fast.Err != nil || !fast.Violated() {
		t.Errorf("fast Result = %+v, want a violation", fast)
	}
	// The loop takes minutes without a deadline; a generous bound keeps
	// the test stable on a loaded machine.
	if elapsed > 5*time.Second {
		t.Errorf("Evaluate() took %s, want it cut at the 50ms deadline", elapsed)
	}
}

// TestEvaluateCancelled checks that cancelling the request's context stops
// a running policy and is reported as the cancellation, not as a timeout.
func TestEvaluateCancelled(t *testing.T) {
	e := NewEngine(Options{Timeout: time.Minute})
	slow := slowPolicy()
	if status := e.UpsertPolicy(slow); !status.Ready {
		t.Fatalf("UpsertPolicy() = %+v", status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(50*time.Millisecond, cancel)
	obj := deployment("apps", "web", nil, "app")

	start := time.Now()
	results := e.Evaluate(ctx, ModeAdmission, ReviewFromObject(obj), Subject{Object: obj})
	elapsed := time.Since(start)

	if len(results) != 1 {
		t.Fatalf("Evaluate() returned %d results, want 1", len(results))
	}
	if err := results[0].Err; !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("Result.Err = %v, want context.Canceled and not ErrTimeout", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Evaluate() took %s, want it stopped when the context was cancelled", elapsed)
	}
}

// TestEvaluateEntryRecoversPanic checks that a panic while evaluating one
// policy becomes that policy's error instead of stopping the process. An
// entry without compiled code and without a compile error cannot come from
// UpsertPolicy, so evaluating it panics.
func TestEvaluateEntryRecoversPanic(t *testing.T) {
	e := NewEngine(Options{})
	ent := &entry{id: "broken", policy: newPolicy("broken", "")}
	obj := deployment("apps", "web", nil, "app")
	review, err := reviewValue(ReviewFromObject(obj))
	if err != nil {
		t.Fatal(err)
	}

	result := e.evaluateEntry(context.Background(), ent, review, Subject{Object: obj}, nil)

	if !errors.Is(result.Err, ErrPanic) {
		t.Errorf("Result.Err = %v, want ErrPanic", result.Err)
	}
	if result.Violated() {
		t.Errorf("Result reports a violation after a panic: %+v", result.Occurrences)
	}
	if result.Duration <= 0 {
		t.Errorf("Result.Duration = %s, want the time the evaluation took", result.Duration)
	}
}

func TestEvaluateIsolatesBrokenPolicies(t *testing.T) {
	e := NewEngine(Options{Parallelism: 4})
	broken := newPolicy("a-broken", "package broken\nviolation contains x if {\n  x := y\n}\n")
	status := e.UpsertPolicy(broken)
	if status.Ready || status.Reason != pacv2beta3.PolicyCompileErrorReason {
		t.Fatalf("UpsertPolicy(broken) = %+v, want CompileError", status)
	}
	if !strings.Contains(status.Message, "line 3") {
		t.Errorf("status message %q does not name line 3", status.Message)
	}
	runtimeError := newPolicy("b-runtime", `package runtime
violation contains x if {
  x := object.union_n([1])
}`)
	e.UpsertPolicy(runtimeError)
	conflict := newPolicy("c-conflict", `package conflict
violation := 1 if true
violation := 2 if true`)
	e.UpsertPolicy(conflict)
	missingParam := newPolicy("d-required", alwaysViolates("required"))
	missingParam.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "needed", Type: "string", Required: true}}
	status = e.UpsertPolicy(missingParam)
	if status.Ready || status.Reason != pacv2beta3.PolicyInvalidParametersReason {
		t.Errorf("UpsertPolicy(required) = %+v, want InvalidParameters", status)
	}
	e.UpsertPolicy(newPolicy("e-good", alwaysViolates("good")))

	results := evaluateObject(e, ModeAdmission, Subject{Object: deployment("apps", "web", nil, "app")})
	byID := map[string]Result{}
	for _, r := range results {
		byID[r.PolicyID] = r
	}
	if len(byID) != 5 {
		t.Fatalf("Evaluate() returned results for %v, want 5 policies", byID)
	}
	if r := byID["a-broken"]; !errors.Is(r.Err, ErrNotCompiled) || r.Violated() {
		t.Errorf("broken Result = %+v, want ErrNotCompiled and no violation", r)
	}
	if r := byID["c-conflict"]; r.Err == nil || r.Violated() {
		t.Errorf("conflict Result = %+v, want an evaluation error and no violation", r)
	}
	if r := byID["d-required"]; !errors.Is(r.Err, ErrInvalidParameters) || r.Violated() {
		t.Errorf("required Result = %+v, want ErrInvalidParameters and no violation", r)
	}
	if r := byID["e-good"]; r.Err != nil || !r.Violated() {
		t.Errorf("good Result = %+v, want a violation", r)
	}
}

func TestUpsertPolicyCompilesOncePerGeneration(t *testing.T) {
	e := NewEngine(Options{})
	p := newPolicy("p", alwaysViolates("p"))

	e.UpsertPolicy(p)
	e.UpsertPolicy(p.DeepCopy())
	if got := e.compileCount(); got != 1 {
		t.Fatalf("compilations after two upserts of generation 1 = %d, want 1", got)
	}

	// A metadata change without a new generation keeps the compiled code.
	relabelled := p.DeepCopy()
	relabelled.Labels = map[string]string{"team": "a"}
	e.UpsertPolicy(relabelled)
	if got := e.compileCount(); got != 1 {
		t.Fatalf("compilations after a label change = %d, want 1", got)
	}

	next := p.DeepCopy()
	next.Generation = 2
	next.Spec.Severity = pacv2beta3.SeverityHigh
	e.UpsertPolicy(next)
	if got := e.compileCount(); got != 2 {
		t.Fatalf("compilations after generation 2 = %d, want 2", got)
	}

	// Objects without a generation, as the CLI reads them, cache by code.
	cli := newPolicy("cli", alwaysViolates("cli"))
	cli.Generation = 0
	e.UpsertPolicy(cli)
	e.UpsertPolicy(cli.DeepCopy())
	if got := e.compileCount(); got != 3 {
		t.Fatalf("compilations after two upserts without generation = %d, want 3", got)
	}
	changed := cli.DeepCopy()
	changed.Spec.Code = alwaysViolates("cli.changed")
	e.UpsertPolicy(changed)
	if got := e.compileCount(); got != 4 {
		t.Fatalf("compilations after a code change without generation = %d, want 4", got)
	}

	results := evaluateObject(e, ModeAudit, Subject{Object: deployment("apps", "web", nil, "app")})
	for _, r := range results {
		if r.PolicyID == "p" && r.Severity != pacv2beta3.SeverityHigh {
			t.Errorf("Severity = %q, want the generation 2 value high", r.Severity)
		}
	}

	e.RemovePolicy("p")
	e.RemovePolicy("cli")
	if results := evaluateObject(e, ModeAudit, Subject{Object: deployment("apps", "web", nil, "app")}); len(results) != 0 {
		t.Errorf("Evaluate() after RemovePolicy = %+v, want no results", results)
	}
}

func TestEvaluateModesAndTargets(t *testing.T) {
	e := NewEngine(Options{})
	deployments := newPolicy("deployments", alwaysViolates("deployments"))
	deployments.Spec.Targets.Kinds = []string{"Deployment"}
	deployments.Spec.Enforce = ptr.To(false)
	pods := newPolicy("pods", alwaysViolates("pods"))
	pods.Spec.Targets.Kinds = []string{"Pod"}
	e.UpsertPolicy(deployments)
	e.UpsertPolicy(pods)
	subject := Subject{Object: deployment("apps", "web", nil, "app")}

	results := evaluateObject(e, ModeAdmission, subject)
	if len(results) != 1 || results[0].PolicyID != "deployments" {
		t.Fatalf("Evaluate() = %+v, want only the Deployment policy", results)
	}
	if results[0].Enforced {
		t.Errorf("Enforced = true, want false from spec.enforce")
	}

	e.SetPolicySets([]pacv2beta2.PolicySet{policySet("audit-only", ModeAudit, pacv2beta2.PolicySetFilters{IDs: []string{"pods"}})})
	if results := evaluateObject(e, ModeAudit, subject); len(results) != 0 {
		t.Errorf("Evaluate(audit) = %+v, want none: the audit set selects only the Pod policy", results)
	}
	if results := evaluateObject(e, ModeAdmission, subject); len(results) != 1 {
		t.Errorf("Evaluate(admission) = %+v, want the Deployment policy: no admission set exists", results)
	}
	if got := e.ActivePolicies(ModeAudit); len(got) != 1 || got[0].Name != "pods" {
		t.Errorf("ActivePolicies(audit) = %v, want [pods]", got)
	}
}

func TestEvaluateRequiredParameterFromConfig(t *testing.T) {
	e := NewEngine(Options{})
	p := newPolicy("p", `package registry
violation contains msg if {
  some c in input.review.object.spec.template.spec.containers
  not startswith(c.image, input.parameters.registry)
  msg := sprintf("image %s is not from %s", [c.image, input.parameters.registry])
}`)
	p.Spec.Parameters = []pacv2beta3.PolicyParameters{{Name: "registry", Type: "string", Required: true}}
	if status := e.UpsertPolicy(p); status.Ready || status.Reason != pacv2beta3.PolicyInvalidParametersReason {
		t.Fatalf("UpsertPolicy() = %+v, want InvalidParameters before a PolicyConfig sets the value", status)
	}

	e.SetPolicyConfigs([]pacv2beta3.PolicyConfig{configFor(t, "apps-registry",
		pacv2beta3.PolicyConfigTarget{Namespaces: []string{"apps"}}, map[string]any{"registry": "trusted.example/"})})
	if status, _ := e.Status("p"); !status.Ready {
		t.Fatalf("Status() = %+v, want Ready once a PolicyConfig sets the required parameter", status)
	}
	if status := e.UpsertPolicy(p); !status.Ready {
		t.Fatalf("UpsertPolicy() = %+v, want Ready", status)
	}

	results := evaluateObject(e, ModeAdmission, Subject{Object: deployment("apps", "web", nil, "app")})
	if len(results) != 1 || results[0].Err != nil || len(results[0].Occurrences) != 1 {
		t.Fatalf("Evaluate(apps) = %+v, want one violation", results)
	}
	if got := results[0].Parameters["registry"]; got.ConfigRef != "apps-registry" {
		t.Errorf("ConfigRef = %q, want apps-registry", got.ConfigRef)
	}

	results = evaluateObject(e, ModeAdmission, Subject{Object: deployment("other", "web", nil, "app")})
	if len(results) != 1 || !errors.Is(results[0].Err, ErrInvalidParameters) {
		t.Fatalf("Evaluate(other) = %+v, want ErrInvalidParameters: no PolicyConfig matches", results)
	}
}

func TestStatusProviderTerraform(t *testing.T) {
	e := NewEngine(Options{})
	p := newPolicy("tf", alwaysViolates("tf"))
	p.Spec.Provider = pacv2beta3.ProviderTerraform
	status := e.UpsertPolicy(p)
	if status.Ready || status.Reason != pacv2beta3.PolicyProviderNotEvaluatedReason {
		t.Errorf("UpsertPolicy() = %+v, want ProviderNotEvaluated", status)
	}
	if results := evaluateObject(e, ModeAdmission, Subject{Object: deployment("apps", "web", nil, "app")}); len(results) != 0 {
		t.Errorf("Evaluate(admission) = %+v, want no terraform results", results)
	}
}

func TestReviewFromAdmission(t *testing.T) {
	obj := deployment("apps", "web", nil, "app")
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	req := admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Namespace: "apps",
		Name:      "web",
		Operation: admissionv1.Delete,
		UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"dev"}},
		OldObject: runtime.RawExtension{Raw: raw},
		DryRun:    ptr.To(true),
	}
	review, subjectObj, err := ReviewFromAdmission(req)
	if err != nil {
		t.Fatalf("ReviewFromAdmission() error = %v", err)
	}
	if review.Operation != "DELETE" || !review.DryRun || review.UserInfo.Username != "alice" {
		t.Errorf("Review = %+v", review)
	}
	if subjectObj.GetName() != "web" || review.Object == nil || review.OldObject == nil {
		t.Errorf("DELETE review object = %v, old = %v, want the stored object in both", review.Object, review.OldObject)
	}

	e := NewEngine(Options{})
	e.UpsertPolicy(newPolicy("p", `package who
violation contains msg if {
  input.review.operation == "DELETE"
  input.review.dryRun
  "dev" in input.review.userInfo.groups
  msg := sprintf("%s deletes %s/%s", [input.review.userInfo.username, input.review.namespace, input.review.object.metadata.name])
}`))
	results := e.Evaluate(context.Background(), ModeAdmission, review, Subject{Object: subjectObj})
	if len(results) != 1 || len(results[0].Occurrences) != 1 || results[0].Occurrences[0].Message != "alice deletes apps/web" {
		t.Fatalf("Evaluate() = %+v, want one violation naming the user", results)
	}

	if _, _, err := ReviewFromAdmission(admissionv1.AdmissionRequest{UID: "empty"}); err == nil {
		t.Errorf("ReviewFromAdmission() without objects error = nil, want an error")
	}
}

func TestSynced(t *testing.T) {
	e := NewEngine(Options{})
	if e.Synced() {
		t.Fatal("Synced() = true before MarkSynced")
	}
	e.MarkSynced()
	if !e.Synced() {
		t.Fatal("Synced() = false after MarkSynced")
	}
}
