package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const admissionReportsSinkName = "admission-reports"

// DefaultAdmissionMaxResults is the default number of admission violations
// kept in each namespace's admission Report.
const DefaultAdmissionMaxResults = 100

// AdmissionReportSink keeps the latest admission violations of each
// namespace in its Report named AdmissionReportName, and of cluster-scoped
// objects in the ClusterReport of that name: newest first, at most
// MaxResults, with a repeated violation (same policy, object, outcome and
// message) counted in its "count" property instead of listed twice. Every
// replica writes the requests it handles. Each write carries the
// resourceVersion it read, so that concurrent writers retry instead of
// overwriting each other.
type AdmissionReportSink struct {
	// Client applies the reports.
	Client client.Client
	// Reader reads the current report. Use an uncached reader so that the
	// resourceVersion is current.
	Reader client.Reader
	// FieldManager is the server-side apply field manager.
	FieldManager string
	// MaxResults caps the results of each report.
	MaxResults int

	queue *queue
}

// NewAdmissionReportSink returns the sink. It keeps
// DefaultAdmissionMaxResults results when maxResults <= 0, and uses the
// default queue length when queueSize <= 0.
func NewAdmissionReportSink(c client.Client, reader client.Reader, fieldManager string, maxResults, queueSize int) *AdmissionReportSink {
	if maxResults <= 0 {
		maxResults = DefaultAdmissionMaxResults
	}
	return &AdmissionReportSink{
		Client:       c,
		Reader:       reader,
		FieldManager: fieldManager,
		MaxResults:   maxResults,
		queue:        newQueue(admissionReportsSinkName, queueSize, 0, 2*time.Second),
	}
}

// Send queues the admission records without blocking. Audit records are
// ignored, because audit reports are written per scan.
func (s *AdmissionReportSink) Send(records []Record) {
	var admission []Record
	for i := range records {
		if records[i].Source == SourceAdmission {
			admission = append(admission, records[i])
		}
	}
	s.queue.offer(admission)
}

// NeedLeaderElection is false: every replica records the requests it
// handles.
func (s *AdmissionReportSink) NeedLeaderElection() bool {
	return false
}

// Start writes queued records until ctx ends.
func (s *AdmissionReportSink) Start(ctx context.Context) error {
	log := sinkLogger(ctx, admissionReportsSinkName)
	log.Info("recording admission violations in reports")
	s.queue.run(ctx, func(ctx context.Context, batch []Record) {
		byNamespace := map[string][]Record{}
		for i := range batch {
			ns := batch[i].Object.Namespace
			byNamespace[ns] = append(byNamespace[ns], batch[i])
		}
		for ns, records := range byNamespace {
			if err := s.write(ctx, ns, records); err != nil {
				log.Error(err, "failed to record admission violations", "namespace", ns, "records", len(records))
				reason := dropReasonDeliveryFailed
				if errors.Is(err, ErrReportsNotInstalled) {
					reason = dropReasonRejected
				}
				sinkDropped.WithLabelValues(admissionReportsSinkName, reason).Add(float64(len(records)))
				continue
			}
			sinkDelivered.WithLabelValues(admissionReportsSinkName).Add(float64(len(records)))
		}
	})
	return nil
}

// write merges the records into the namespace's report, retrying when
// another replica changed it in between.
func (s *AdmissionReportSink) write(ctx context.Context, namespace string, records []Record) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, resourceVersion, err := s.current(ctx, namespace)
		if err != nil {
			return err
		}
		results := MergeAdmissionResults(current, records, s.MaxResults)
		obj := newReport(namespace, AdmissionReportName, SourceAdmission, workspaceOfRecords(records), time.Time{},
			results, summarize(results, 0), s.MaxResults)
		if resourceVersion != "" {
			obj.SetResourceVersion(resourceVersion)
		}
		err = s.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
			client.FieldOwner(s.FieldManager), client.ForceOwnership)
		if err != nil {
			reportWrites.WithLabelValues(SourceAdmission, "error").Inc()
			if apierrors.IsConflict(err) {
				return err
			}
			return notInstalledOr(err, fmt.Sprintf("apply %s %s", obj.GetKind(), objectName(namespace, AdmissionReportName)))
		}
		reportWrites.WithLabelValues(SourceAdmission, "success").Inc()
		return nil
	})
}

// current returns the results and resourceVersion of the admission report
// of namespace. Both are empty when it does not exist.
// NOTE: two replicas creating the same report at once can lose the first
// batch of one of them, because server-side apply cannot require that an
// object does not exist yet.
func (s *AdmissionReportSink) current(ctx context.Context, namespace string) ([]openreportsv1alpha1.ReportResult, string, error) {
	key := client.ObjectKey{Namespace: namespace, Name: AdmissionReportName}
	var (
		results []openreportsv1alpha1.ReportResult
		rv      string
		err     error
	)
	if namespace == "" {
		report := &openreportsv1alpha1.ClusterReport{}
		err = s.Reader.Get(ctx, key, report)
		results, rv = report.Results, report.ResourceVersion
	} else {
		report := &openreportsv1alpha1.Report{}
		err = s.Reader.Get(ctx, key, report)
		results, rv = report.Results, report.ResourceVersion
	}
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", notInstalledOr(err, "get admission report "+objectName(namespace, AdmissionReportName))
	}
	return results, rv, nil
}

// MergeAdmissionResults puts the records' results before the current ones,
// newest first. A record equal to a listed result (same policy, object,
// outcome and message) moves that result to the front with its count
// incremented. The list is cut to maxResults.
func MergeAdmissionResults(current []openreportsv1alpha1.ReportResult, records []Record, maxResults int) []openreportsv1alpha1.ReportResult {
	merged := slices.Clone(current)
	sorted := slices.Clone(records)
	slices.SortStableFunc(sorted, func(a, b Record) int { return a.Time.Compare(b.Time) })
	for i := range sorted {
		result := admissionResult(&sorted[i])
		if j := slices.IndexFunc(merged, func(r openreportsv1alpha1.ReportResult) bool { return sameAdmissionResult(&r, &result) }); j >= 0 {
			count, _ := strconv.Atoi(merged[j].Properties[PropertyCount])
			result.Properties[PropertyCount] = strconv.Itoa(max(count, 1) + 1)
			merged = slices.Delete(merged, j, j+1)
		}
		merged = slices.Insert(merged, 0, result)
	}
	if len(merged) > maxResults {
		merged = merged[:maxResults]
	}
	return merged
}

func sameAdmissionResult(a, b *openreportsv1alpha1.ReportResult) bool {
	sa, sb := firstSubject(a), firstSubject(b)
	return a.Policy == b.Policy && a.Result == b.Result && a.Description == b.Description &&
		sa.Kind == sb.Kind && sa.Namespace == sb.Namespace && sa.Name == sb.Name && sa.APIVersion == sb.APIVersion
}

func workspaceOfRecords(records []Record) string {
	for i := range records {
		if records[i].Workspace != "" {
			return records[i].Workspace
		}
	}
	return ""
}
