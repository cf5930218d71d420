package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// SARIF 2.1.0 identifiers.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	// toolInformationURI is the home of tdctl, from the Go module path.
	toolInformationURI = "https://github.com/trusted-delivery/trusted-delivery"
)

// The types below are the parts of the SARIF 2.1.0 object model that
// tdctl writes, with the property names of the specification.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name,omitempty"`
	ShortDescription     *sarifMessage      `json:"shortDescription,omitempty"`
	FullDescription      *sarifMessage      `json:"fullDescription,omitempty"`
	Help                 *sarifMessage      `json:"help,omitempty"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProperty  `json:"properties"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Severity string   `json:"severity"`
	Category string   `json:"category,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	Enforced bool     `json:"enforced"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifResult struct {
	RuleID     string              `json:"ruleId"`
	RuleIndex  int                 `json:"ruleIndex"`
	Level      string              `json:"level"`
	Message    sarifMessage        `json:"message"`
	Locations  []sarifLocation     `json:"locations"`
	Properties sarifResultProperty `json:"properties"`
}

type sarifResultProperty struct {
	Enforced         bool   `json:"enforced"`
	Failing          bool   `json:"failing"`
	ViolatingKey     string `json:"violatingKey,omitempty"`
	RecommendedValue any    `json:"recommendedValue,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysicalLocation `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a policy severity to a SARIF result level.
func sarifLevel(severity string) string {
	switch severity {
	case pacv2beta3.SeverityHigh:
		return "error"
	case pacv2beta3.SeverityMedium:
		return "warning"
	}
	return "note"
}

// writeSARIF writes a SARIF 2.1.0 log with one rule per active policy and
// one result per occurrence of a violation. Policies that failed to
// evaluate are tool execution notifications.
func (r *validationReport) writeSARIF(w io.Writer) error {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           "tdctl",
			Version:        r.tool.Version,
			InformationURI: toolInformationURI,
			Rules:          []sarifRule{},
		}},
		Results: []sarifResult{},
	}
	ruleIndex := map[string]int{}
	for i := range r.policies {
		p := &r.policies[i]
		ruleIndex[policy.PolicyID(p)] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRuleOf(p))
	}

	invocation := sarifInvocation{ExecutionSuccessful: true}
	for _, obj := range r.objects {
		locations := []sarifLocation{sarifLocationOf(obj.manifest)}
		for i := range obj.results {
			res := &obj.results[i]
			if res.Err != nil {
				invocation.ExecutionSuccessful = false
				invocation.ToolExecutionNotifications = append(invocation.ToolExecutionNotifications, sarifNotification{
					Level: "error",
					Message: sarifMessage{Text: fmt.Sprintf("policy %s could not be evaluated on %s: %v",
						res.PolicyID, describeObject(obj.manifest), res.Err)},
					Locations: locations,
				})
				continue
			}
			for _, occurrence := range res.Occurrences {
				message := occurrence.Message
				if message == "" {
					message = res.PolicyName
				}
				run.Results = append(run.Results, sarifResult{
					RuleID:    res.PolicyID,
					RuleIndex: ruleIndex[res.PolicyID],
					Level:     sarifLevel(res.Severity),
					Message:   sarifMessage{Text: fmt.Sprintf("%s: %s", describeObject(obj.manifest), message)},
					Locations: locations,
					Properties: sarifResultProperty{
						Enforced:         res.Enforced,
						Failing:          r.failing(res),
						ViolatingKey:     occurrence.ViolatingKey,
						RecommendedValue: occurrence.RecommendedValue,
					},
				})
			}
		}
	}
	run.Invocations = []sarifInvocation{invocation}

	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

func sarifRuleOf(p *pacv2beta3.Policy) sarifRule {
	rule := sarifRule{
		ID:                   policy.PolicyID(p),
		Name:                 p.Spec.Name,
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(p.Spec.Severity)},
		Properties: sarifRuleProperty{
			Severity: p.Spec.Severity,
			Category: p.Spec.Category,
			Tags:     p.Spec.Tags,
			Enforced: p.Spec.Enforce == nil || *p.Spec.Enforce,
		},
	}
	if p.Spec.Name != "" {
		rule.ShortDescription = &sarifMessage{Text: p.Spec.Name}
	}
	if description := strings.TrimSpace(p.Spec.Description); description != "" {
		rule.FullDescription = &sarifMessage{Text: description}
	}
	if help := strings.TrimSpace(p.Spec.HowToSolve); help != "" {
		rule.Help = &sarifMessage{Text: help}
	}
	return rule
}

// sarifLocationOf locates an object: its file and line, and its identity
// as a logical location. Objects from standard input have no file.
func sarifLocationOf(m *manifest) sarifLocation {
	loc := sarifLocation{LogicalLocations: []sarifLogicalLocation{{
		Name:               m.object.GetName(),
		FullyQualifiedName: strings.TrimPrefix(m.object.GetKind()+"/"+objectName(m.object), "/"),
		Kind:               "resource",
	}}}
	if m.file == stdinName {
		return loc
	}
	loc.PhysicalLocation = &sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: fileURI(m.file)}}
	if m.line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: m.line}
	}
	return loc
}

// fileURI returns a URI reference for a file: relative to the working
// directory when the file is inside it, as code scanning expects paths
// relative to the repository root, and an absolute file URI otherwise.
func fileURI(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return (&url.URL{Path: filepath.ToSlash(path)}).String()
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return (&url.URL{Path: filepath.ToSlash(rel)}).String()
		}
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}
