// Package report records policy violations. It aggregates audit results
// into OpenReports Reports and ClusterReports and keeps the last admission
// violations of each namespace in the same format. It sends every violation
// to the optional sinks (Elasticsearch, Flux notification-controller, a JSON
// lines file), and it serves the read API over the reports.
package report

import (
	"encoding/json"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// Sources of a Record, also the value of the "source" property of each
// report result and the source filter of the read API.
const (
	SourceAudit     = "audit"
	SourceAdmission = "admission"
)

// Record is one policy violation on one object, found by an audit scan or
// in an admission request. It carries no manifest, only references.
type Record struct {
	Source string `json:"source"`
	// Time is when the violation was found.
	Time time.Time `json:"timestamp"`

	PolicyID   string `json:"policyId"`
	PolicyName string `json:"policyName"`
	Severity   string `json:"severity"`
	Category   string `json:"category,omitempty"`
	// Enforced is the policy's spec.enforce.
	Enforced bool `json:"enforced"`

	Object policy.ObjectRef `json:"object"`
	// Workspace owns the object's namespace, from the namespace's tenant
	// label. Empty for cluster-scoped objects and untenanted namespaces.
	Workspace string `json:"workspace,omitempty"`
	// FluxOwner is the Kustomization or HelmRelease that applied the object,
	// from its Flux labels. Nil when Flux did not apply it.
	FluxOwner *FluxOwner `json:"fluxOwner,omitempty"`

	Occurrences []policy.Occurrence `json:"occurrences"`

	// Admission holds the request details for SourceAdmission. Nil for
	// audit records.
	Admission *AdmissionDetails `json:"admission,omitempty"`
}

// FluxOwner identifies the Flux object that applied an object.
type FluxOwner struct {
	// Kind is Kustomization or HelmRelease.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// AdmissionDetails describes the admission request of a violation.
type AdmissionDetails struct {
	// Operation is CREATE, UPDATE, DELETE or CONNECT.
	Operation string `json:"operation"`
	// User is the requesting user's name.
	User string `json:"user"`
	// Denied is true when the request was denied, and false when the
	// violation was returned as a warning because the policy is not
	// enforced.
	Denied bool `json:"denied"`
}

// Message joins the occurrence messages of the record.
func (r *Record) Message() string {
	return joinMessages(r.Occurrences, maxMessageLength)
}

// maxMessageLength bounds a message built from occurrences, so that one
// policy with many occurrences cannot make a report result or an event
// large.
const maxMessageLength = 1024

func joinMessages(occurrences []policy.Occurrence, limit int) string {
	var b strings.Builder
	for i, o := range occurrences {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(o.Message)
		if b.Len() > limit {
			break
		}
	}
	return truncate(b.String(), limit)
}

// truncate shortens s to at most limit bytes without splitting a UTF-8
// sequence, and marks the cut with an ellipsis.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func isRuneStart(b byte) bool {
	return b&0xC0 != 0x80
}

// WorkspaceOf returns the Workspace named by namespace labels, or "".
func WorkspaceOf(namespaceLabels map[string]string) string {
	return namespaceLabels[tenancyv1alpha1.TenantLabel]
}

// FluxOwnerOf returns the Kustomization or HelmRelease that applied the
// object, from the labels Flux sets on what it applies. Nil when there is
// none. A HelmRelease wins over the Kustomization that applied it.
func FluxOwnerOf(obj *unstructured.Unstructured) *FluxOwner {
	labels := obj.GetLabels()
	if name := labels[policy.HelmReleaseNameLabel]; name != "" {
		return &FluxOwner{Kind: "HelmRelease", Name: name, Namespace: labels[policy.HelmReleaseNamespaceLabel]}
	}
	if name := labels[policy.KustomizationNameLabel]; name != "" {
		return &FluxOwner{Kind: "Kustomization", Name: name, Namespace: labels[policy.KustomizationNamespaceLabel]}
	}
	return nil
}

// AuditRecords returns a Record for each violated result of an audit of obj.
func AuditRecords(at time.Time, obj *unstructured.Unstructured, workspace string, results []policy.Result) []Record {
	return violationRecords(SourceAudit, at, obj, workspace, results, nil)
}

// AdmissionRecords returns a Record for each violated result of an admission
// request, where denied is true when the request was denied. A violation of a
// policy that is not enforced is recorded as a warning either way. Dry-run
// requests must have no side effects, so they yield no records.
func AdmissionRecords(
	at time.Time,
	req *admissionv1.AdmissionRequest,
	obj *unstructured.Unstructured,
	workspace string,
	results []policy.Result,
	denied bool,
) []Record {
	if req.DryRun != nil && *req.DryRun {
		return nil
	}
	details := &AdmissionDetails{Operation: string(req.Operation), User: req.UserInfo.Username, Denied: denied}
	records := violationRecords(SourceAdmission, at, obj, workspace, results, details)
	for i := range records {
		if !records[i].Enforced {
			warned := *details
			warned.Denied = false
			records[i].Admission = &warned
		}
	}
	return records
}

func violationRecords(
	source string,
	at time.Time,
	obj *unstructured.Unstructured,
	workspace string,
	results []policy.Result,
	details *AdmissionDetails,
) []Record {
	var records []Record
	owner := FluxOwnerOf(obj)
	for i := range results {
		r := &results[i]
		if !r.Violated() {
			continue
		}
		records = append(records, Record{
			Source:      source,
			Time:        at,
			PolicyID:    r.PolicyID,
			PolicyName:  r.PolicyName,
			Severity:    r.Severity,
			Category:    r.Category,
			Enforced:    r.Enforced,
			Object:      r.Object,
			Workspace:   workspace,
			FluxOwner:   owner,
			Occurrences: r.Occurrences,
			Admission:   details,
		})
	}
	return records
}

// recommendedValueText returns the recommended value as JSON text, so that
// document stores see one type whatever the policy returns.
func recommendedValueText(value any) string {
	if value == nil {
		return ""
	}
	if s, ok := value.(string); ok {
		return s
	}
	data, err := json.Marshal(value)
	if err != nil {
		return ""
	}
	return string(data)
}
