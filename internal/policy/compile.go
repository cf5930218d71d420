package policy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// ViolationRule is the rule that every policy module must define. The engine
// evaluates data.<package>.violation.
const ViolationRule = "violation"

// maxReportedErrors bounds how many compiler errors a CompileError lists, so
// that a status message stays readable.
const maxReportedErrors = 5

// deniedBuiltins are built-in functions that policies may not call. They
// reach the network, so a policy calling them could stall admission on a
// remote host or probe internal addresses from the operator's pod.
var deniedBuiltins = map[string]bool{
	"http.send":          true,
	"net.lookup_ip_addr": true,
}

// Compiled is a policy module compiled into a prepared query. It is safe for
// concurrent use.
type Compiled struct {
	// Package is the module's package path without the data. prefix.
	Package string
	// RegoVersion is the syntax the module was compiled with: "v0" or "v1".
	RegoVersion string

	query rego.PreparedEvalQuery
}

// CompileError is the failure to compile a policy's code, with the Ready
// condition reason it leads to.
type CompileError struct {
	// Reason is the Ready condition reason: CompileError or
	// MissingViolationRule.
	Reason string
	// RegoVersion is the syntax that Message refers to: the one the module
	// fits best when it compiles with neither.
	RegoVersion string
	// Message lists the compiler errors as "line L, column C: code: message".
	Message string
	// Line is the line of the first error, 0 when unknown.
	Line int
}

func (e *CompileError) Error() string {
	return e.Message
}

// compileAttempt is the outcome of compiling a module with one Rego version.
type compileAttempt struct {
	version  ast.RegoVersion
	compiled *Compiled
	err      *CompileError
	// stage is how far the attempt got: 0 parse failed, 1 compile failed,
	// 2 compiled but without a violation rule, 3 success.
	stage int
	// row and col locate the first error, to rank attempts that failed at
	// the same stage.
	row, col int
}

// Compile parses and compiles the policy's code into a prepared query for
// data.<package>.violation. It detects the Rego syntax per module: it tries
// v1 and then v0, and when both fail it reports the errors of the version
// that got furthest. The error is a *CompileError. Compile keeps no state;
// the Engine caches its result per policy generation.
func Compile(p *pacv2beta3.Policy) (*Compiled, error) {
	return compileCode(context.Background(), PolicyID(p), p.Spec.Code)
}

func compileCode(ctx context.Context, id, code string) (*Compiled, error) {
	attempts := make([]compileAttempt, 0, 2)
	for _, version := range []ast.RegoVersion{ast.RegoV1, ast.RegoV0} {
		attempt := compileVersion(ctx, id, code, version)
		if attempt.err == nil {
			return attempt.compiled, nil
		}
		attempts = append(attempts, attempt)
	}
	return nil, bestAttempt(code, attempts).err
}

// bestAttempt picks the failed attempt whose errors fit the module best: the
// one that got to a later stage, then the one whose first error is later in
// the code. On a tie it picks the version that the code's imports and rule
// heads suggest.
func bestAttempt(code string, attempts []compileAttempt) compileAttempt {
	best := attempts[0]
	for _, a := range attempts[1:] {
		switch {
		case a.stage != best.stage:
			if a.stage > best.stage {
				best = a
			}
		case a.row != best.row:
			if a.row > best.row {
				best = a
			}
		case a.col != best.col:
			if a.col > best.col {
				best = a
			}
		case a.version == suggestedVersion(code):
			best = a
		}
	}
	return best
}

var (
	regoV1Import     = regexp.MustCompile(`(?m)^\s*import\s+rego\.v1\b`)
	futureImport     = regexp.MustCompile(`(?m)^\s*import\s+future\.keywords\b`)
	v0PartialSetHead = regexp.MustCompile(`(?m)^[A-Za-z_][A-Za-z0-9_]*\[[^\]\n]*\]\s*\{`)
)

// suggestedVersion guesses a module's syntax from its text. It decides which
// errors to report when both versions fail at the same place. An import of
// rego.v1 means v1. Imports of future.keywords, or a v0 partial set head such
// as "violation[result] {", mean v0.
func suggestedVersion(code string) ast.RegoVersion {
	switch {
	case regoV1Import.MatchString(code):
		return ast.RegoV1
	case futureImport.MatchString(code), v0PartialSetHead.MatchString(code):
		return ast.RegoV0
	}
	return ast.RegoV1
}

func compileVersion(ctx context.Context, id, code string, version ast.RegoVersion) compileAttempt {
	attempt := compileAttempt{version: version}
	filename := id + ".rego"
	module, err := ast.ParseModuleWithOpts(filename, code, ast.ParserOptions{RegoVersion: version})
	if err != nil {
		attempt.err, attempt.row, attempt.col = compileErrorFrom(err, version)
		return attempt
	}
	attempt.stage = 1

	pkg := module.Package.Path[1:].String()
	compiler, err := compileModule(filename, module, version)
	if err != nil {
		attempt.err, attempt.row, attempt.col = compileErrorFrom(err, version)
		return attempt
	}
	query, err := rego.New(
		rego.Query("data."+pkg+"."+ViolationRule),
		rego.Compiler(compiler),
		rego.Store(emptyStore),
		rego.SetRegoVersion(version),
		rego.Capabilities(compiler.Capabilities()),
		rego.GenerateJSON(keepTerm),
	).PrepareForEval(ctx)
	if err != nil {
		attempt.err, attempt.row, attempt.col = compileErrorFrom(err, version)
		return attempt
	}
	attempt.stage = 2

	if !definesViolation(module) {
		attempt.err = &CompileError{
			Reason:      pacv2beta3.PolicyMissingViolationRuleReason,
			RegoVersion: version.String(),
			Message: fmt.Sprintf("package %s defines no %q rule: add a rule whose elements are the violations",
				pkg, ViolationRule),
		}
		return attempt
	}
	attempt.stage = 3
	attempt.compiled = &Compiled{Package: pkg, RegoVersion: version.String(), query: query}
	return attempt
}

// emptyStore is the data document of every prepared query: policies read
// only their input. It is never written, so queries share it.
var emptyStore = inmem.New()

// compileModule compiles the module on its own. A compiler keeps a type
// table of every built-in function it may call, an estimated 40 KiB and most
// of a compiled policy's memory. So it first compiles with only the
// built-ins that the module names, the operators and the internal functions
// that the compiler's rewrites call. When that fails it compiles again with
// all of them, so the errors are those of the full language.
func compileModule(filename string, module *ast.Module, version ast.RegoVersion) (*ast.Compiler, error) {
	modules := map[string]*ast.Module{filename: module}
	full := capabilities(version)
	compiler := newCompiler(version, trimmedCapabilities(full, module))
	if compiler.Compile(modules); !compiler.Failed() {
		return compiler, nil
	}
	compiler = newCompiler(version, full)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, compiler.Errors
	}
	return compiler, nil
}

func newCompiler(version ast.RegoVersion, caps *ast.Capabilities) *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(caps).
		WithDefaultRegoVersion(version).
		WithUseTypeCheckAnnotations(true)
}

// trimmedCapabilities returns caps with only the built-ins that the module
// may reach: those whose name it mentions as a reference or a variable, the
// operators and the internal functions. Variables count because OPA reads a
// variable named like a built-in, such as max in a comprehension or a with
// value, as that built-in, and must reject the module as it would with every
// built-in.
func trimmedCapabilities(caps *ast.Capabilities, module *ast.Module) *ast.Capabilities {
	named := map[string]bool{}
	ast.WalkRefs(module, func(ref ast.Ref) bool {
		named[ref.String()] = true
		return false
	})
	ast.WalkVars(module, func(v ast.Var) bool {
		named[string(v)] = true
		return false
	})
	trimmed := *caps
	trimmed.Builtins = nil
	for _, b := range caps.Builtins {
		if named[b.Name] || b.Infix != "" || strings.HasPrefix(b.Name, "internal.") {
			trimmed.Builtins = append(trimmed.Builtins, b)
		}
	}
	trimmed.Builtins = slices.Clip(trimmed.Builtins)
	return &trimmed
}

// capabilities returns the built-in functions and features of this OPA
// version for the Rego version, without the denied built-ins and with no
// network access. Each call returns a copy of a list built once per version.
func capabilities(version ast.RegoVersion) *ast.Capabilities {
	base := capabilitiesV1
	if version == ast.RegoV0 {
		base = capabilitiesV0
	}
	caps := *base()
	caps.Builtins = slices.Clone(caps.Builtins)
	return &caps
}

var (
	capabilitiesV1 = sync.OnceValue(func() *ast.Capabilities { return buildCapabilities(ast.RegoV1) })
	capabilitiesV0 = sync.OnceValue(func() *ast.Capabilities { return buildCapabilities(ast.RegoV0) })
)

func buildCapabilities(version ast.RegoVersion) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion(ast.CapabilitiesRegoVersion(version))
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return deniedBuiltins[b.Name]
	})
	caps.AllowNet = []string{}
	return caps
}

func definesViolation(module *ast.Module) bool {
	for _, rule := range module.Rules {
		ref := rule.Head.Ref()
		if len(ref) > 0 && ref[0].Value.Compare(ast.Var(ViolationRule)) == 0 {
			return true
		}
	}
	return false
}

// compileErrorFrom turns a parser or compiler error into a CompileError and
// returns the location of its first error.
func compileErrorFrom(err error, version ast.RegoVersion) (*CompileError, int, int) {
	var astErrs ast.Errors
	if !errors.As(err, &astErrs) || len(astErrs) == 0 {
		var single *ast.Error
		if !errors.As(err, &single) {
			return &CompileError{
				Reason:      pacv2beta3.PolicyCompileErrorReason,
				RegoVersion: version.String(),
				Message:     fmt.Sprintf("rego %s: %v", version, err),
			}, 0, 0
		}
		astErrs = ast.Errors{single}
	}
	astErrs.Sort()
	astErrs = slices.CompactFunc(astErrs, func(a, b *ast.Error) bool {
		return a.Code == b.Code && a.Message == b.Message && sameRow(a, b)
	})

	lines := make([]string, 0, min(len(astErrs), maxReportedErrors)+1)
	for i, e := range astErrs {
		if i == maxReportedErrors {
			lines = append(lines, fmt.Sprintf("and %d more errors", len(astErrs)-i))
			break
		}
		lines = append(lines, formatASTError(e))
	}
	row, col := 0, 0
	if loc := astErrs[0].Location; loc != nil {
		row, col = loc.Row, loc.Col
	}
	return &CompileError{
		Reason:      pacv2beta3.PolicyCompileErrorReason,
		RegoVersion: version.String(),
		Message:     fmt.Sprintf("rego %s: %s", version, strings.Join(lines, "; ")),
		Line:        row,
	}, row, col
}

func sameRow(a, b *ast.Error) bool {
	if a.Location == nil || b.Location == nil {
		return a.Location == b.Location
	}
	return a.Location.Row == b.Location.Row && a.Location.Col == b.Location.Col
}

func formatASTError(e *ast.Error) string {
	message := e.Message
	if name, ok := strings.CutPrefix(message, "undefined function "); ok && deniedBuiltins[name] {
		message += " (policies may not call " + name + ", because it reaches the network)"
	}
	if e.Location == nil {
		return fmt.Sprintf("%s: %s", e.Code, message)
	}
	return fmt.Sprintf("line %d, column %d: %s: %s", e.Location.Row, e.Location.Col, e.Code, message)
}
