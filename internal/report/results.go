package report

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// ResultSource is the source of every report and report result the operator
// writes.
const ResultSource = "trusted-delivery"

// Keys of the properties of a report result.
const (
	// PropertySource is audit or admission.
	PropertySource = "source"
	// PropertyPolicyName is the policy's spec.name.
	PropertyPolicyName = "policyName"
	// PropertyEnforced is the policy's spec.enforce, "true" or "false".
	PropertyEnforced = "enforced"
	// PropertyWorkspace is the Workspace of the object's namespace.
	PropertyWorkspace = "workspace"
	// PropertyOccurrences is the number of elements of the violation set.
	PropertyOccurrences = "occurrences"
	// PropertyViolatingKeys lists the violating_key of the occurrences,
	// comma-separated.
	PropertyViolatingKeys = "violatingKeys"
	// PropertyOperation is the admission request's operation.
	PropertyOperation = "operation"
	// PropertyUser is the user of the admission request.
	PropertyUser = "user"
	// PropertyCount is how often an admission violation was seen while it
	// stayed in the report.
	PropertyCount = "count"
	// PropertyGroupVersion is the API group and version that an audit could
	// not discover or list. Set on error results about the scan itself.
	PropertyGroupVersion = "groupVersion"
	// PropertyResource is the resource that an audit could not list.
	PropertyResource = "resource"
)

// AuditScanPolicy is the policy field of the error results that report a
// part of the cluster the audit could not scan.
const AuditScanPolicy = "trusted-delivery-audit-scan"

// maxPropertyLength bounds property values built from lists.
const maxPropertyLength = 256

// severityRank orders severities, worst first.
func severityRank(severity string) int {
	switch severity {
	case pacv2beta3.SeverityHigh:
		return 0
	case pacv2beta3.SeverityMedium:
		return 1
	case pacv2beta3.SeverityLow:
		return 2
	default:
		return 3
	}
}

// WorseSeverity returns the worse of two severities, where "" is better
// than any.
func WorseSeverity(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	if severityRank(b) < severityRank(a) {
		return b
	}
	return a
}

func resultSeverity(severity string) openreportsv1alpha1.ResultSeverity {
	switch severity {
	case pacv2beta3.SeverityHigh, pacv2beta3.SeverityMedium, pacv2beta3.SeverityLow:
		return openreportsv1alpha1.ResultSeverity(severity)
	default:
		return ""
	}
}

func timestamp(t time.Time) metav1.Timestamp {
	return metav1.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

func subjectOf(ref policy.ObjectRef) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: ref.APIVersion,
		Kind:       ref.Kind,
		Namespace:  ref.Namespace,
		Name:       ref.Name,
		UID:        types.UID(ref.UID),
	}
}

// auditResult converts a failed or errored policy result into a report
// result. A passing result has no report result.
func auditResult(r *policy.Result, workspace string, at time.Time) (openreportsv1alpha1.ReportResult, bool) {
	properties := map[string]string{
		PropertySource:     SourceAudit,
		PropertyPolicyName: r.PolicyName,
		PropertyEnforced:   strconv.FormatBool(r.Enforced),
	}
	if workspace != "" {
		properties[PropertyWorkspace] = workspace
	}
	result := openreportsv1alpha1.ReportResult{
		Source:     ResultSource,
		Policy:     r.PolicyID,
		Category:   r.Category,
		Severity:   resultSeverity(r.Severity),
		Timestamp:  timestamp(at),
		Scored:     true,
		Subjects:   []corev1.ObjectReference{subjectOf(r.Object)},
		Properties: properties,
	}
	switch {
	case r.Err != nil:
		result.Result = openreportsv1alpha1.Result(StatusError)
		result.Description = truncate(r.Err.Error(), maxMessageLength)
	case len(r.Occurrences) > 0:
		result.Result = openreportsv1alpha1.Result(StatusFail)
		result.Description = joinMessages(r.Occurrences, maxMessageLength)
		properties[PropertyOccurrences] = strconv.Itoa(len(r.Occurrences))
		if keys := violatingKeys(r.Occurrences); keys != "" {
			properties[PropertyViolatingKeys] = keys
		}
	default:
		return openreportsv1alpha1.ReportResult{}, false
	}
	return result, true
}

// admissionResult converts an admission record into a report result: fail
// when it denied the request, warn when it was returned as a warning.
func admissionResult(r *Record) openreportsv1alpha1.ReportResult {
	properties := map[string]string{
		PropertySource:      SourceAdmission,
		PropertyPolicyName:  r.PolicyName,
		PropertyEnforced:    strconv.FormatBool(r.Enforced),
		PropertyOccurrences: strconv.Itoa(len(r.Occurrences)),
		PropertyCount:       "1",
	}
	if r.Workspace != "" {
		properties[PropertyWorkspace] = r.Workspace
	}
	if keys := violatingKeys(r.Occurrences); keys != "" {
		properties[PropertyViolatingKeys] = keys
	}
	status := StatusWarn
	if r.Admission != nil {
		properties[PropertyOperation] = r.Admission.Operation
		properties[PropertyUser] = truncate(r.Admission.User, maxPropertyLength)
		if r.Admission.Denied {
			status = StatusFail
		}
	}
	return openreportsv1alpha1.ReportResult{
		Source:      ResultSource,
		Policy:      r.PolicyID,
		Category:    r.Category,
		Severity:    resultSeverity(r.Severity),
		Timestamp:   timestamp(r.Time),
		Result:      openreportsv1alpha1.Result(status),
		Scored:      true,
		Subjects:    []corev1.ObjectReference{subjectOf(r.Object)},
		Description: r.Message(),
		Properties:  properties,
	}
}

// Values of ReportResult.Result that the operator writes.
const (
	StatusFail  = "fail"
	StatusWarn  = "warn"
	StatusError = "error"
)

func violatingKeys(occurrences []policy.Occurrence) string {
	var keys []string
	for _, o := range occurrences {
		if o.ViolatingKey != "" && !slices.Contains(keys, o.ViolatingKey) {
			keys = append(keys, o.ViolatingKey)
		}
	}
	return truncate(strings.Join(keys, ","), maxPropertyLength)
}

// compareResults orders report results for reading and truncation: fail
// before error, worse severity first, then by policy and object.
func compareResults(a, b *openreportsv1alpha1.ReportResult) int {
	if c := cmp.Compare(statusRank(a.Result), statusRank(b.Result)); c != 0 {
		return c
	}
	if c := cmp.Compare(severityRank(string(a.Severity)), severityRank(string(b.Severity))); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Policy, b.Policy); c != 0 {
		return c
	}
	sa, sb := firstSubject(a), firstSubject(b)
	return cmp.Or(
		cmp.Compare(sa.Kind, sb.Kind),
		cmp.Compare(sa.Namespace, sb.Namespace),
		cmp.Compare(sa.Name, sb.Name),
		cmp.Compare(sa.APIVersion, sb.APIVersion),
	)
}

func statusRank(r openreportsv1alpha1.Result) int {
	switch r {
	case StatusFail:
		return 0
	case StatusWarn:
		return 1
	default:
		return 2
	}
}

func firstSubject(r *openreportsv1alpha1.ReportResult) corev1.ObjectReference {
	if len(r.Subjects) == 0 {
		return corev1.ObjectReference{}
	}
	return r.Subjects[0]
}

// summarize counts the results by outcome. The caller passes the pass
// count, because passing results are not listed.
func summarize(results []openreportsv1alpha1.ReportResult, pass int) openreportsv1alpha1.ReportSummary {
	summary := openreportsv1alpha1.ReportSummary{Pass: pass}
	for i := range results {
		addToSummary(&summary, results[i].Result)
	}
	return summary
}

func addToSummary(summary *openreportsv1alpha1.ReportSummary, result openreportsv1alpha1.Result) {
	switch result {
	case StatusFail:
		summary.Fail++
	case StatusWarn:
		summary.Warn++
	case StatusError:
		summary.Error++
	case "pass":
		summary.Pass++
	case "skip":
		summary.Skip++
	}
}
