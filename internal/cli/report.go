package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// checkedObject is one input object with the result of every policy that
// applies to it.
type checkedObject struct {
	manifest *manifest
	results  []policy.Result
}

// validationReport is the outcome of validate, which each output format
// renders.
type validationReport struct {
	mode   policy.Mode
	failOn string
	// files are the input files in the order read.
	files   []string
	objects []checkedObject
	// policies are the policies active in mode, sorted by ID.
	policies []pacv2beta3.Policy
	tool     BuildInfo
}

// reportSummary counts the outcome.
type reportSummary struct {
	Files    int `json:"files"`
	Objects  int `json:"objects"`
	Policies int `json:"policies"`
	// Violations is the number of object and policy pairs that violate.
	Violations int `json:"violations"`
	// Failing is the number of Violations that set exit code 1: of an
	// enforced policy at or above --fail-on.
	Failing int `json:"failing"`
	// Errors is the number of policy evaluations that failed.
	Errors int `json:"errors"`
}

func (r *validationReport) summary() reportSummary {
	s := reportSummary{Files: len(r.files), Objects: len(r.objects), Policies: len(r.policies)}
	for _, obj := range r.objects {
		for i := range obj.results {
			res := &obj.results[i]
			switch {
			case res.Err != nil:
				s.Errors++
			case res.Violated():
				s.Violations++
				if r.failing(res) {
					s.Failing++
				}
			}
		}
	}
	return s
}

// failing reports whether a result makes validate exit with code 1.
func (r *validationReport) failing(res *policy.Result) bool {
	return res.Violated() && res.Enforced && severityRank(res.Severity) >= severityRank(r.failOn)
}

// severityRank orders severities from low (1) to high (3); unknown is 0.
func severityRank(severity string) int {
	return slices.Index(severities, severity) + 1
}

// sortObjects orders the objects by input file, then line, so that reports
// group them by file.
func (r *validationReport) sortObjects() {
	order := make(map[string]int, len(r.files))
	for i, file := range r.files {
		order[file] = i
	}
	slices.SortStableFunc(r.objects, func(a, b checkedObject) int {
		return cmp.Or(
			cmp.Compare(order[a.manifest.file], order[b.manifest.file]),
			cmp.Compare(a.manifest.line, b.manifest.line),
		)
	})
}

// objectsByFile returns the objects of each input file, in file order.
func (r *validationReport) objectsByFile() map[string][]checkedObject {
	byFile := make(map[string][]checkedObject, len(r.files))
	for _, obj := range r.objects {
		byFile[obj.manifest.file] = append(byFile[obj.manifest.file], obj)
	}
	return byFile
}

func (r *validationReport) write(w io.Writer, format string) error {
	switch format {
	case outputText:
		return r.writeText(w)
	case outputJSON:
		return r.writeJSON(w)
	case outputSARIF:
		return r.writeSARIF(w)
	case outputJUnit:
		return r.writeJUnit(w)
	}
	return fmt.Errorf("unknown output format %q", format)
}

// describeObject names an object as Kind namespace/name.
func describeObject(m *manifest) string {
	name := objectName(m.object)
	if name == "" {
		name = "(no name)"
	}
	return m.object.GetKind() + " " + name
}

// location returns FILE:LINE, or FILE when the line is unknown.
func (m *manifest) location() string {
	if m.line > 0 {
		return fmt.Sprintf("%s:%d", m.file, m.line)
	}
	return m.file
}
