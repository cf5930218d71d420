package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
)

// Names of the reports the operator writes: one Report per namespace and
// one ClusterReport for cluster-scoped objects, for each source.
const (
	AuditReportName     = "trusted-delivery-audit"
	AdmissionReportName = "trusted-delivery-admission"
)

// Labels and annotations of the reports.
const (
	// ComponentLabel is "audit" or "admission", the source of the report.
	ComponentLabel = "app.kubernetes.io/component"
	// AuditTimeAnnotation is the start of the audit scan that wrote an
	// audit report, in RFC 3339.
	AuditTimeAnnotation = "pac.weave.works/audit-time"
)

// ErrReportsNotInstalled is returned when the OpenReports CRDs are not
// installed in the cluster.
var ErrReportsNotInstalled = errors.New("the OpenReports CRDs (reports.openreports.io, clusterreports.openreports.io) are not installed")

// AddToScheme registers the OpenReports kinds, which the read API and the
// report writers read through the manager's client.
var AddToScheme = openreportsv1alpha1.Install

// The audit writes and prunes its reports, the admission sink writes its
// own, and the read API reads them all through the cache.
// +kubebuilder:rbac:groups=openreports.io,resources=reports;clusterreports,verbs=get;list;watch;create;patch;delete
// The Elasticsearch credentials Secret is read from the operator's namespace.
// +kubebuilder:rbac:groups="",namespace=trusted-delivery-system,resources=secrets,verbs=get

// ReportWriter writes the reports of audit scans.
type ReportWriter struct {
	// Client applies and deletes reports.
	Client client.Client
	// Reader lists the existing reports. An uncached reader sees the
	// reports of the previous scan even right after start-up.
	Reader client.Reader
	// FieldManager is the server-side apply field manager.
	FieldManager string
}

// WriteAudit applies the Report of each namespace with audited objects and
// the ClusterReport, and removes the Reports of namespaces that no longer
// have audited objects. Results of kinds the scan could not read are kept
// from the previous reports, so that a failing API group does not hide
// known violations. It returns ErrReportsNotInstalled when the CRDs are
// missing.
func (w *ReportWriter) WriteAudit(ctx context.Context, results *AuditResults) error {
	previous, err := w.previousAuditReports(ctx)
	if err != nil {
		return err
	}
	failures := results.Failures()
	keep := func(r *openreportsv1alpha1.ReportResult) bool { return failedKind(failures, r) }

	audited := results.Namespaces()
	namespaces := slices.Clone(audited)
	for ns := range previous {
		if ns != "" && !slices.Contains(audited, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	slices.Sort(namespaces)

	var errs []error
	for _, ns := range namespaces {
		if ns == "" {
			continue
		}
		listed, summary, workspace := results.scopeReport(ns)
		keepFirstSeen(listed, previous[ns])
		carried := carryOver(previous[ns], keepUnlisted(listed, keep))
		if len(carried) == 0 && !slices.Contains(audited, ns) {
			errs = append(errs, w.deleteReport(ctx, ns))
			continue
		}
		for i := range carried {
			addToSummary(&summary, carried[i].Result)
		}
		obj := newReport(ns, AuditReportName, SourceAudit, workspace, results.Time,
			sortResults(append(listed, carried...)), summary, results.MaxResults)
		errs = append(errs, w.apply(ctx, obj, SourceAudit))
	}

	listed, summary, _ := results.scopeReport("")
	keepFirstSeen(listed, previous[""])
	extra := append(carryOver(previous[""], keepUnlisted(listed, keep)), failureResults(failures, results.Time)...)
	for i := range extra {
		addToSummary(&summary, extra[i].Result)
	}
	listed = append(listed, extra...)
	obj := newReport("", AuditReportName, SourceAudit, "", results.Time,
		sortResults(listed), summary, results.MaxResults+len(failures))
	errs = append(errs, w.apply(ctx, obj, SourceAudit))
	return errors.Join(errs...)
}

// previousAuditReports returns the results of the audit reports by
// namespace, "" for the ClusterReport.
func (w *ReportWriter) previousAuditReports(ctx context.Context) (map[string][]openreportsv1alpha1.ReportResult, error) {
	previous := map[string][]openreportsv1alpha1.ReportResult{}
	reports := &openreportsv1alpha1.ReportList{}
	err := w.Reader.List(ctx, reports, client.MatchingLabels{
		tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue,
		ComponentLabel:                 SourceAudit,
	})
	if err != nil {
		return nil, notInstalledOr(err, "list audit Reports")
	}
	for i := range reports.Items {
		if reports.Items[i].Name == AuditReportName {
			previous[reports.Items[i].Namespace] = reports.Items[i].Results
		}
	}
	cluster := &openreportsv1alpha1.ClusterReport{}
	err = w.Reader.Get(ctx, client.ObjectKey{Name: AuditReportName}, cluster)
	switch {
	case err == nil:
		previous[""] = cluster.Results
	case apierrors.IsNotFound(err):
	default:
		return nil, notInstalledOr(err, "get ClusterReport "+AuditReportName)
	}
	return previous, nil
}

func notInstalledOr(err error, action string) error {
	if meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err) {
		return fmt.Errorf("%s: %w", action, ErrReportsNotInstalled)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// carryOver returns the previous results that keep selects, leaving out the
// error results about the scan itself, which each scan writes anew.
func carryOver(previous []openreportsv1alpha1.ReportResult, keep func(*openreportsv1alpha1.ReportResult) bool) []openreportsv1alpha1.ReportResult {
	var carried []openreportsv1alpha1.ReportResult
	for i := range previous {
		if previous[i].Policy != AuditScanPolicy && keep(&previous[i]) {
			carried = append(carried, previous[i])
		}
	}
	return carried
}

// keepFirstSeen sets the timestamp of each result that the previous report
// has too (same policy, object, outcome and message) to the previous
// timestamp, so that a result's timestamp is when the audit first found it.
func keepFirstSeen(results, previous []openreportsv1alpha1.ReportResult) {
	type key struct {
		policy, message string
		result          openreportsv1alpha1.Result
		object          corev1.ObjectReference
	}
	firstSeen := make(map[key]metav1.Timestamp, len(previous))
	for i := range previous {
		r := &previous[i]
		firstSeen[key{r.Policy, r.Description, r.Result, firstSubject(r)}] = r.Timestamp
	}
	for i := range results {
		r := &results[i]
		if t, ok := firstSeen[key{r.Policy, r.Description, r.Result, firstSubject(r)}]; ok {
			r.Timestamp = t
		}
	}
}

// keepUnlisted wraps keep so that it rejects results about a policy and
// object that listed already has, which happens when listing a resource
// failed after its first pages.
func keepUnlisted(listed []openreportsv1alpha1.ReportResult, keep func(*openreportsv1alpha1.ReportResult) bool) func(*openreportsv1alpha1.ReportResult) bool {
	type key struct {
		policy string
		object corev1.ObjectReference
	}
	seen := make(map[key]bool, len(listed))
	for i := range listed {
		seen[key{listed[i].Policy, firstSubject(&listed[i])}] = true
	}
	return func(r *openreportsv1alpha1.ReportResult) bool {
		return keep(r) && !seen[key{r.Policy, firstSubject(r)}]
	}
}

// failedKind reports whether the result is about an object of a group
// version or resource that the scan could not read.
func failedKind(failures []ScanFailure, r *openreportsv1alpha1.ReportResult) bool {
	subject := firstSubject(r)
	gv, err := schema.ParseGroupVersion(subject.APIVersion)
	if err != nil {
		return false
	}
	for _, f := range failures {
		if f.GroupVersion == gv && (f.Resource == "" || f.Kind == subject.Kind) {
			return true
		}
	}
	return false
}

// failureResults returns an error result for each part of the cluster the
// scan could not read, so that the ClusterReport summary counts them.
func failureResults(failures []ScanFailure, at time.Time) []openreportsv1alpha1.ReportResult {
	results := make([]openreportsv1alpha1.ReportResult, 0, len(failures))
	for _, f := range failures {
		properties := map[string]string{
			PropertySource:       SourceAudit,
			PropertyGroupVersion: f.GroupVersion.String(),
		}
		rule := "discovery"
		if f.Resource != "" {
			rule = "list"
			properties[PropertyResource] = f.Resource
		}
		results = append(results, openreportsv1alpha1.ReportResult{
			Source:      ResultSource,
			Policy:      AuditScanPolicy,
			Rule:        rule,
			Timestamp:   timestamp(at),
			Result:      StatusError,
			Description: truncate(f.Message, maxMessageLength),
			Properties:  properties,
		})
	}
	return results
}

// newReport returns the apply configuration of a Report in namespace, or
// of a ClusterReport for "", with the first maxResults results.
func newReport(
	namespace, name, source, workspace string,
	at time.Time,
	results []openreportsv1alpha1.ReportResult,
	summary openreportsv1alpha1.ReportSummary,
	maxResults int,
) *unstructured.Unstructured {
	if len(results) > maxResults {
		results = results[:maxResults]
	}
	labels := map[string]string{
		tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue,
		ComponentLabel:                 source,
	}
	if workspace != "" {
		labels[tenancyv1alpha1.WorkspaceLabel] = workspace
	}
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
	if source == SourceAudit {
		meta.Annotations = map[string]string{AuditTimeAnnotation: at.UTC().Format(time.RFC3339)}
	}
	configuration := &openreportsv1alpha1.ReportConfiguration{Limits: openreportsv1alpha1.Limits{
		MaxResults:   maxResults,
		StatusFilter: []openreportsv1alpha1.StatusFilter{StatusFail, StatusWarn, StatusError},
	}}
	if results == nil {
		results = []openreportsv1alpha1.ReportResult{}
	}

	var typed runtime.Object
	if namespace == "" {
		typed = &openreportsv1alpha1.ClusterReport{
			TypeMeta:      metav1.TypeMeta{APIVersion: openreportsv1alpha1.SchemeGroupVersion.String(), Kind: "ClusterReport"},
			ObjectMeta:    meta,
			Source:        ResultSource,
			Configuration: configuration,
			Summary:       summary,
			Results:       results,
		}
	} else {
		typed = &openreportsv1alpha1.Report{
			TypeMeta:      metav1.TypeMeta{APIVersion: openreportsv1alpha1.SchemeGroupVersion.String(), Kind: "Report"},
			ObjectMeta:    meta,
			Source:        ResultSource,
			Configuration: configuration,
			Summary:       summary,
			Results:       results,
		}
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
	if err != nil {
		// The types are plain structs of strings, numbers and maps, which
		// always convert.
		panic(fmt.Sprintf("convert report %s/%s: %v", namespace, name, err))
	}
	obj := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
	return obj
}

func (w *ReportWriter) apply(ctx context.Context, obj *unstructured.Unstructured, source string) error {
	err := w.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.FieldOwner(w.FieldManager), client.ForceOwnership)
	if err != nil {
		reportWrites.WithLabelValues(source, "error").Inc()
		return notInstalledOr(err, fmt.Sprintf("apply %s %s", obj.GetKind(), objectName(obj.GetNamespace(), obj.GetName())))
	}
	reportWrites.WithLabelValues(source, "success").Inc()
	return nil
}

func (w *ReportWriter) deleteReport(ctx context.Context, namespace string) error {
	report := &openreportsv1alpha1.Report{ObjectMeta: metav1.ObjectMeta{Name: AuditReportName, Namespace: namespace}}
	if err := w.Client.Delete(ctx, report); err != nil && !apierrors.IsNotFound(err) {
		reportWrites.WithLabelValues(SourceAudit, "error").Inc()
		return fmt.Errorf("delete Report %s/%s: %w", namespace, AuditReportName, err)
	}
	reportWrites.WithLabelValues(SourceAudit, "success").Inc()
	return nil
}

func sortResults(results []openreportsv1alpha1.ReportResult) []openreportsv1alpha1.ReportResult {
	slices.SortStableFunc(results, func(a, b openreportsv1alpha1.ReportResult) int { return compareResults(&a, &b) })
	return results
}
