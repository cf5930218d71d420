package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

func TestCompileSyntaxVersions(t *testing.T) {
	tests := []struct {
		name        string
		code        string
		wantVersion string
		wantPackage string
	}{
		{
			name: "v0 partial set with future keywords",
			code: `package weave.example.v0
import future.keywords.in
violation[result] {
  some c in input.review.object.spec.containers
  result := {"msg": c.name}
}`,
			wantVersion: "v0",
			wantPackage: "weave.example.v0",
		},
		{
			name: "v0 without imports",
			code: `package example.plain
violation[{"msg": msg}] {
  input.review.object.kind == "Pod"
  msg := "pod"
}`,
			wantVersion: "v0",
			wantPackage: "example.plain",
		},
		{
			name: "v0 with deprecated built-in",
			code: `package example.deprecated
violation[{"msg": "x"}] {
  re_match("^a", input.review.name)
}`,
			wantVersion: "v0",
			wantPackage: "example.deprecated",
		},
		{
			name: "v1 contains and if",
			code: `package example.v1
violation contains {"msg": msg} if {
  some c in input.review.object.spec.containers
  msg := c.name
}`,
			wantVersion: "v1",
			wantPackage: "example.v1",
		},
		{
			name: "v1 with rego.v1 import",
			code: `package example.regov1
import rego.v1
violation contains "x" if input.review.name == "a"`,
			wantVersion: "v1",
			wantPackage: "example.regov1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compiled, err := Compile(newPolicy("p", tt.code))
			if err != nil {
				t.Fatalf("Compile() error = %v", err)
			}
			if compiled.RegoVersion != tt.wantVersion {
				t.Errorf("RegoVersion = %q, want %q", compiled.RegoVersion, tt.wantVersion)
			}
			if compiled.Package != tt.wantPackage {
				t.Errorf("Package = %q, want %q", compiled.Package, tt.wantPackage)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name        string
		code        string
		wantReason  string
		wantVersion string
		wantLine    int
		wantText    []string
	}{
		{
			name: "v1 unsafe variable",
			code: `package example.unsafe

violation contains {"msg": msg} if {
  input.review.object.kind == "Pod"
  msg := undefined_var
}`,
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v1",
			wantLine:    5,
			wantText:    []string{"line 5, column", "rego_unsafe_var_error", "undefined_var"},
		},
		{
			name: "v0 unsafe variable",
			code: `package example.unsafe0
import future.keywords.in

violation[result] {
  some c in input.review.object.spec.containers
  result := {"msg": nope}
}`,
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v0",
			wantLine:    6,
			wantText:    []string{"line 6, column", "nope is unsafe"},
		},
		{
			name: "v1 syntax error reported for v1",
			code: `package example.syntax

violation contains result if {
  result := {"msg": "x"
}`,
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v1",
			wantLine:    5,
			wantText:    []string{"rego_parse_error", "line 5", "unexpected eof"},
		},
		{
			name: "v0 syntax error reported for v0",
			code: `package example.syntax0

violation[result] {
  result := {"msg": "x"}
}

helper {
  input.review.object.kind == =
}`,
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v0",
			wantLine:    8,
			wantText:    []string{"rego_parse_error", "line 8"},
		},
		{
			name:        "missing package",
			code:        "violation[x] { x := 1 }",
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v0",
			wantLine:    1,
			wantText:    []string{"package expected"},
		},
		{
			name: "missing violation rule",
			code: `package example.noviolation
deny contains "x" if true`,
			wantReason:  pacv2beta3.PolicyMissingViolationRuleReason,
			wantVersion: "v1",
			wantText:    []string{`defines no "violation" rule`, "example.noviolation"},
		},
		{
			name: "denied network built-in",
			code: `package example.net
violation contains "x" if {
  http.send({"method": "GET", "url": "http://127.0.0.1:1"})
}`,
			wantReason:  pacv2beta3.PolicyCompileErrorReason,
			wantVersion: "v1",
			wantLine:    3,
			wantText:    []string{"undefined function http.send (policies may not call http.send, because it reaches the network)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compiled, err := Compile(newPolicy("p", tt.code))
			if err == nil {
				t.Fatalf("Compile() = %+v, want an error", compiled)
			}
			var compileErr *CompileError
			if !errors.As(err, &compileErr) {
				t.Fatalf("Compile() error %T %v is not a *CompileError", err, err)
			}
			if compileErr.Reason != tt.wantReason {
				t.Errorf("Reason = %q, want %q", compileErr.Reason, tt.wantReason)
			}
			if compileErr.RegoVersion != tt.wantVersion {
				t.Errorf("RegoVersion = %q, want %q (message %q)", compileErr.RegoVersion, tt.wantVersion, compileErr.Message)
			}
			if tt.wantLine != 0 && compileErr.Line != tt.wantLine {
				t.Errorf("Line = %d, want %d (message %q)", compileErr.Line, tt.wantLine, compileErr.Message)
			}
			for _, text := range tt.wantText {
				if !strings.Contains(compileErr.Message, text) {
					t.Errorf("Message = %q, want it to contain %q", compileErr.Message, text)
				}
			}
		})
	}
}

func TestCompileWeaveLibraryManifest(t *testing.T) {
	p := loadPolicyFile(t, "testdata/containers-running-as-root.yaml")
	if p.Spec.Enabled == nil || *p.Spec.Enabled {
		t.Fatalf("spec.enabled = %v, want false as in the manifest", p.Spec.Enabled)
	}
	compiled, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	if compiled.RegoVersion != "v0" {
		t.Errorf("RegoVersion = %q, want v0", compiled.RegoVersion)
	}
}

// TestCompileWithTrimmedBuiltins checks that modules compile against only
// the built-ins they name, including those the compiler's rewrites call,
// and still evaluate as with every built-in.
func TestCompileWithTrimmedBuiltins(t *testing.T) {
	tests := []struct {
		name string
		code string
		want []string
	}{
		{
			name: "membership, every, print and arithmetic",
			code: `package trimmed.ops
violation contains msg if {
	some c in input.review.object.spec.containers
	every p in c.ports { p > 1000 }
	print("checked", c.name)
	c.name in {"a", "b"}
	n := -count(c.ports) + 10
	msg := sprintf("%s %d", [c.name, n])
}`,
			want: []string{"a 9"},
		},
		{
			name: "v0 with future keywords and a comprehension",
			code: `package trimmed.v0
import future.keywords.in
violation[{"msg": msg}] {
	names := {n | some c in input.review.object.spec.containers; n := upper(c.name)}
	"A" in names
	msg := concat(",", sort(names))
}`,
			want: []string{"A,B"},
		},
		{
			name: "with replacing a built-in",
			code: `package trimmed.mock
mocked(x) := 42
violation contains sprintf("%v", [n]) if {
	n := count(input.review.object.spec.containers) with count as mocked
}`,
			want: []string{"42"},
		},
	}
	input := map[string]any{
		"review": map[string]any{"object": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "a", "ports": []any{8080}},
			map[string]any{"name": "b", "ports": []any{80}},
		}}}},
		"parameters": map[string]any{},
	}
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			module, err := ast.ParseModuleWithOpts("m.rego", tt.code, ast.ParserOptions{RegoVersion: suggestedVersion(tt.code)})
			if err != nil {
				t.Fatal(err)
			}
			full := capabilities(module.RegoVersion())
			compiler, err := compileModule("m.rego", module, module.RegoVersion())
			if err != nil {
				t.Fatalf("compileModule() error = %v", err)
			}
			if got := len(compiler.Capabilities().Builtins); got >= len(full.Builtins)/2 {
				t.Errorf("compiler has %d built-ins of %d, want only those the module reaches", got, len(full.Builtins))
			}
			compiled, err := compileCode(context.Background(), "m", tt.code)
			if err != nil {
				t.Fatalf("compileCode() error = %v", err)
			}
			occurrences, err := compiled.eval(context.Background(), value, DefaultTimeout)
			if err != nil {
				t.Fatalf("eval error = %v", err)
			}
			var got []string
			for _, o := range occurrences {
				got = append(got, o.Message)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCompileBuiltinNamedVariables checks that a variable named like a
// built-in keeps that built-in in the trimmed capabilities. OPA reads such a
// variable in a comprehension or a with value as the built-in and rejects
// these modules, so the engine must too.
func TestCompileBuiltinNamedVariables(t *testing.T) {
	tests := []struct {
		name string
		code string
	}{
		{
			name: "comprehension variable",
			code: `package named.comprehension
violation contains concat(",", names) if {
	names := [trim | some c in input.review.object.spec.containers; trim = c.name]
}`,
		},
		{
			name: "with value",
			code: `package named.with
f(x) := x
violation contains sprintf("%v", [y]) if {
	max = input.parameters.limit
	y := f([1, 2, 3]) with f as max
}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, opaErr := rego.New(rego.Query("data.x"), rego.Module("m.rego", tt.code)).PrepareForEval(context.Background())
			if opaErr == nil {
				t.Fatal("OPA compiles the module, want the type error this test relies on")
			}
			if _, err := Compile(newPolicy("p", tt.code)); err == nil {
				t.Errorf("Compile() succeeded, want an error as OPA reports: %v", opaErr)
			}
		})
	}
}
