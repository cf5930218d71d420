package cli

import (
	"encoding/json"
	"io"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// jsonReportVersion is the version of the JSON report structure. It changes
// only when a field is removed or changes meaning; new fields may be added
// without a change.
const jsonReportVersion = 1

// Values of jsonResult.Status.
const (
	statusFail  = "fail"
	statusWarn  = "warn"
	statusError = "error"
)

// jsonReport is the JSON report, documented in docs/tdctl.md.
type jsonReport struct {
	Version int           `json:"version"`
	Mode    string        `json:"mode"`
	FailOn  string        `json:"failOn"`
	Summary reportSummary `json:"summary"`
	// Results are the violations and errors; objects that comply are left
	// out.
	Results []jsonResult `json:"results"`
}

type jsonResult struct {
	File          string           `json:"file"`
	Line          int              `json:"line,omitempty"`
	Kustomization string           `json:"kustomization,omitempty"`
	Object        policy.ObjectRef `json:"object"`
	Policy        jsonPolicy       `json:"policy"`
	// Status is fail (sets exit code 1), warn (a violation that does not) or
	// error (the policy could not be evaluated).
	Status      string           `json:"status"`
	Occurrences []jsonOccurrence `json:"occurrences,omitempty"`
	Error       string           `json:"error,omitempty"`
}

type jsonPolicy struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Severity   string   `json:"severity"`
	Category   string   `json:"category,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Standards  []string `json:"standards,omitempty"`
	Enforced   bool     `json:"enforced"`
	HowToSolve string   `json:"howToSolve,omitempty"`
}

type jsonOccurrence struct {
	Message          string `json:"message"`
	ViolatingKey     string `json:"violatingKey,omitempty"`
	RecommendedValue any    `json:"recommendedValue,omitempty"`
}

func (r *validationReport) writeJSON(w io.Writer) error {
	out := jsonReport{
		Version: jsonReportVersion,
		Mode:    string(r.mode),
		FailOn:  r.failOn,
		Summary: r.summary(),
		Results: []jsonResult{},
	}
	for _, obj := range r.objects {
		for i := range obj.results {
			res := &obj.results[i]
			if res.Err == nil && !res.Violated() {
				continue
			}
			out.Results = append(out.Results, r.jsonResult(obj.manifest, res))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (r *validationReport) jsonResult(m *manifest, res *policy.Result) jsonResult {
	result := jsonResult{
		File:          m.file,
		Line:          m.line,
		Kustomization: m.kustomization,
		Object:        res.Object,
		Policy: jsonPolicy{
			ID:         res.PolicyID,
			Name:       res.PolicyName,
			Severity:   res.Severity,
			Category:   res.Category,
			Tags:       res.Tags,
			Standards:  res.Standards,
			Enforced:   res.Enforced,
			HowToSolve: res.HowToSolve,
		},
	}
	switch {
	case res.Err != nil:
		result.Status = statusError
		result.Error = res.Err.Error()
		return result
	case r.failing(res):
		result.Status = statusFail
	default:
		result.Status = statusWarn
	}
	for _, occurrence := range res.Occurrences {
		result.Occurrences = append(result.Occurrences, jsonOccurrence{
			Message:          occurrence.Message,
			ViolatingKey:     occurrence.ViolatingKey,
			RecommendedValue: occurrence.RecommendedValue,
		})
	}
	return result
}
