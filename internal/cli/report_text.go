package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// writeText prints the objects that have violations or errors, grouped by
// file, and a summary line.
func (r *validationReport) writeText(w io.Writer) error {
	p := &textPrinter{w: w}
	byFile := r.objectsByFile()
	for _, file := range r.files {
		for _, obj := range byFile[file] {
			r.writeTextObject(p, obj)
		}
	}
	s := r.summary()
	p.printf("%s in %s checked against %s (mode %s): %s, %d failing at --fail-on %s, %s\n",
		count(s.Objects, "object", "objects"), count(s.Files, "file", "files"), count(s.Policies, "policy", "policies"),
		r.mode, count(s.Violations, "violation", "violations"), s.Failing, r.failOn, count(s.Errors, "error", "errors"))
	return p.err
}

func (r *validationReport) writeTextObject(p *textPrinter, obj checkedObject) {
	header := false
	for i := range obj.results {
		res := &obj.results[i]
		if res.Err == nil && !res.Violated() {
			continue
		}
		if !header {
			header = true
			built := ""
			if obj.manifest.kustomization != "" {
				built = fmt.Sprintf(" (built from %s)", obj.manifest.kustomization)
			}
			p.printf("%s: %s%s\n", obj.manifest.location(), describeObject(obj.manifest), built)
		}
		if res.Err != nil {
			p.printf("  ERROR %s: %s\n", res.PolicyID, res.PolicyName)
			p.field("error", res.Err.Error())
			continue
		}
		p.printf("  %s [%s] %s: %s%s\n", r.verdict(res), res.Severity, res.PolicyID, res.PolicyName, r.qualifier(res))
		for _, occurrence := range res.Occurrences {
			p.field("message", occurrence.Message)
			p.field("violating_key", occurrence.ViolatingKey)
			if occurrence.RecommendedValue != nil {
				p.field("recommended_value", jsonString(occurrence.RecommendedValue))
			}
		}
		p.field("how_to_solve", res.HowToSolve)
	}
	if header {
		p.printf("\n")
	}
}

// verdict is FAIL for a violation that sets exit code 1, else WARN.
func (r *validationReport) verdict(res *policy.Result) string {
	if r.failing(res) {
		return "FAIL"
	}
	return "WARN"
}

// qualifier returns the reason that a violation does not fail, or "" when
// it fails.
func (r *validationReport) qualifier(res *policy.Result) string {
	switch {
	case !res.Enforced:
		return " (not enforced)"
	case !r.failing(res):
		return fmt.Sprintf(" (below --fail-on %s)", r.failOn)
	}
	return ""
}

// textPrinter keeps the first write error, so that callers print without
// checking each line.
type textPrinter struct {
	w   io.Writer
	err error
}

func (p *textPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// field prints "    name: value", indenting continuation lines; it prints
// nothing for an empty value.
func (p *textPrinter) field(name, value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		return
	}
	value = strings.ReplaceAll(value, "\n", "\n      ")
	p.printf("      %s: %s\n", name, value)
}

// jsonString renders a value as compact JSON.
func jsonString(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(data)
}

// count formats n with the singular or plural noun.
func count(n int, singular, plural string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", singular)
	}
	return fmt.Sprintf("%d %s", n, plural)
}
