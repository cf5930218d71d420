package report

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
	tenancyv1alpha1 "github.com/trusted-delivery/trusted-delivery/api/tenancy/v1alpha1"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// Paths of the read API on the metrics server.
const (
	ViolationsPath = "/api/v1/violations"
	SummaryPath    = "/api/v1/summary"
)

// Page sizes of GET /api/v1/violations.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// ReadAPI serves the violations and summaries recorded in the reports as
// JSON. It reads the reports and Policies through Reader and stores
// nothing itself.
type ReadAPI struct {
	// Reader is the manager's cached client.
	Reader client.Reader
}

// RegisterReadAPI mounts the read API on the manager's metrics server, so
// that it has the same authentication and authorization as /metrics: a
// client needs RBAC "get" on the non-resource URLs /api/v1/violations and
// /api/v1/summary.
func RegisterReadAPI(mgr manager.Manager) error {
	if err := RegisterScheme(mgr.GetScheme()); err != nil {
		return err
	}
	api := &ReadAPI{Reader: mgr.GetClient()}
	for path, handler := range api.Handlers() {
		if err := mgr.AddMetricsServerExtraHandler(path, handler); err != nil {
			return fmt.Errorf("register read API path %s on the metrics server: %w", path, err)
		}
	}
	return nil
}

// Handlers returns the handler of each path.
func (a *ReadAPI) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		ViolationsPath: getOnly(a.serveViolations),
		SummaryPath:    getOnly(a.serveSummary),
	}
}

// Violation is one item of GET /api/v1/violations.
type Violation struct {
	Source     string           `json:"source"`
	Result     string           `json:"result"`
	Policy     string           `json:"policy"`
	PolicyName string           `json:"policyName,omitempty"`
	Severity   string           `json:"severity,omitempty"`
	Category   string           `json:"category,omitempty"`
	Message    string           `json:"message"`
	Timestamp  time.Time        `json:"timestamp"`
	Workspace  string           `json:"workspace,omitempty"`
	Object     policy.ObjectRef `json:"object"`
	// Properties are the report result's properties.
	Properties map[string]string `json:"properties,omitempty"`
}

// ViolationList is the body of GET /api/v1/violations.
type ViolationList struct {
	Items []Violation `json:"items"`
	// Continue is passed as the continue parameter to get the next page;
	// empty on the last page.
	Continue string `json:"continue,omitempty"`
}

// violationFilter holds the query parameters of GET /api/v1/violations.
// Each filter takes comma-separated values. An empty filter matches all.
type violationFilter struct {
	policies, severities, categories, namespaces, workspaces, sources, results []string
	limit                                                                      int
	offset                                                                     int
}

func parseViolationFilter(query url.Values) (violationFilter, error) {
	f := violationFilter{
		policies:   listParam(query, "policy"),
		severities: listParam(query, "severity"),
		categories: listParam(query, "category"),
		namespaces: listParam(query, "namespace"),
		workspaces: listParam(query, "workspace"),
		sources:    listParam(query, "source"),
		results:    listParam(query, "result"),
		limit:      defaultPageLimit,
	}
	if err := checkValues("severity", f.severities, pacv2beta3.SeverityLow, pacv2beta3.SeverityMedium, pacv2beta3.SeverityHigh); err != nil {
		return f, err
	}
	if err := checkValues("source", f.sources, SourceAudit, SourceAdmission); err != nil {
		return f, err
	}
	if err := checkValues("result", f.results, StatusFail, StatusWarn, StatusError); err != nil {
		return f, err
	}
	if len(f.results) == 0 {
		f.results = []string{StatusFail, StatusWarn}
	}
	if s := query.Get("limit"); s != "" {
		limit, err := strconv.Atoi(s)
		if err != nil || limit < 1 || limit > maxPageLimit {
			return f, fmt.Errorf("invalid limit %q: use a number from 1 to %d", s, maxPageLimit)
		}
		f.limit = limit
	}
	if token := query.Get("continue"); token != "" {
		offset, err := decodeContinue(token)
		if err != nil {
			return f, err
		}
		f.offset = offset
	}
	return f, nil
}

func listParam(query url.Values, name string) []string {
	var values []string
	for _, v := range query[name] {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				values = append(values, part)
			}
		}
	}
	return values
}

func checkValues(name string, values []string, allowed ...string) error {
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("invalid %s %q: use one of %s", name, v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// The continue token is the offset into the ordered results, encoded so
// that clients treat it as opaque. A page boundary shifts when reports
// change between requests, as with any offset.
func encodeContinue(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeContinue(token string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		if s, ok := strings.CutPrefix(string(raw), "offset:"); ok {
			if offset, convErr := strconv.Atoi(s); convErr == nil && offset >= 0 {
				return offset, nil
			}
		}
	}
	return 0, fmt.Errorf("invalid continue token %q: pass the continue value of the previous page", token)
}

func (f *violationFilter) matches(v *Violation) bool {
	return matchAny(f.policies, v.Policy) &&
		matchAny(f.severities, v.Severity) &&
		matchAny(f.categories, v.Category) &&
		matchAny(f.namespaces, v.Object.Namespace) &&
		matchAny(f.workspaces, v.Workspace) &&
		matchAny(f.sources, v.Source) &&
		matchAny(f.results, v.Result)
}

func matchAny(values []string, v string) bool {
	return len(values) == 0 || slices.Contains(values, v)
}

func (a *ReadAPI) serveViolations(w http.ResponseWriter, r *http.Request) {
	filter, err := parseViolationFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	reports, err := a.listReports(r.Context(), filter.namespaces)
	if err != nil {
		writeReadError(w, err)
		return
	}
	list := ViolationList{Items: []Violation{}}
	seen := 0
	for i := range reports {
		for j := range reports[i].results {
			v := violationOf(&reports[i], &reports[i].results[j])
			if !filter.matches(&v) {
				continue
			}
			seen++
			if seen <= filter.offset {
				continue
			}
			if len(list.Items) == filter.limit {
				list.Continue = encodeContinue(filter.offset + filter.limit)
				writeJSON(w, http.StatusOK, list)
				return
			}
			list.Items = append(list.Items, v)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func violationOf(report *storedReport, r *openreportsv1alpha1.ReportResult) Violation {
	subject := firstSubject(r)
	source := r.Properties[PropertySource]
	if source == "" {
		source = report.source
	}
	workspace := r.Properties[PropertyWorkspace]
	if workspace == "" {
		workspace = report.workspace
	}
	return Violation{
		Source:     source,
		Result:     string(r.Result),
		Policy:     r.Policy,
		PolicyName: r.Properties[PropertyPolicyName],
		Severity:   string(r.Severity),
		Category:   r.Category,
		Message:    r.Description,
		Timestamp:  time.Unix(r.Timestamp.Seconds, int64(r.Timestamp.Nanos)).UTC(),
		Workspace:  workspace,
		Object: policy.ObjectRef{
			APIVersion: subject.APIVersion,
			Kind:       subject.Kind,
			Namespace:  subject.Namespace,
			Name:       subject.Name,
			UID:        string(subject.UID),
		},
		Properties: r.Properties,
	}
}

// storedReport is a Report or ClusterReport the operator wrote.
type storedReport struct {
	namespace string
	source    string
	workspace string
	summary   openreportsv1alpha1.ReportSummary
	auditTime string
	results   []openreportsv1alpha1.ReportResult
}

// listReports returns the operator's reports in a stable order: the
// ClusterReports, then the Reports by namespace. Audit before admission.
// When namespaces is not empty, only their Reports are returned.
func (a *ReadAPI) listReports(ctx context.Context, namespaces []string) ([]storedReport, error) {
	selector := client.MatchingLabels{tenancyv1alpha1.ManagedByLabel: tenancyv1alpha1.ManagedByValue}
	var reports []storedReport
	if len(namespaces) == 0 {
		clusterReports := &openreportsv1alpha1.ClusterReportList{}
		if err := a.Reader.List(ctx, clusterReports, selector); err != nil {
			return nil, notInstalledOr(err, "list ClusterReports")
		}
		for i := range clusterReports.Items {
			r := &clusterReports.Items[i]
			reports = append(reports, storedReportOf("", r.Labels, r.Annotations, r.Summary, r.Results))
		}
	}
	lists := []*openreportsv1alpha1.ReportList{}
	if len(namespaces) == 0 {
		lists = append(lists, &openreportsv1alpha1.ReportList{})
		if err := a.Reader.List(ctx, lists[0], selector); err != nil {
			return nil, notInstalledOr(err, "list Reports")
		}
	}
	for _, ns := range namespaces {
		list := &openreportsv1alpha1.ReportList{}
		if err := a.Reader.List(ctx, list, selector, client.InNamespace(ns)); err != nil {
			return nil, notInstalledOr(err, "list Reports in namespace "+ns)
		}
		lists = append(lists, list)
	}
	for _, list := range lists {
		for i := range list.Items {
			r := &list.Items[i]
			reports = append(reports, storedReportOf(r.Namespace, r.Labels, r.Annotations, r.Summary, r.Results))
		}
	}
	slices.SortStableFunc(reports, func(a, b storedReport) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return sourceRank(a.source) - sourceRank(b.source)
	})
	return reports, nil
}

// sourceRank orders audit reports before admission reports.
func sourceRank(source string) int {
	if source == SourceAudit {
		return 0
	}
	return 1
}

func storedReportOf(
	namespace string,
	labels, annotations map[string]string,
	summary openreportsv1alpha1.ReportSummary,
	results []openreportsv1alpha1.ReportResult,
) storedReport {
	return storedReport{
		namespace: namespace,
		source:    labels[ComponentLabel],
		workspace: labels[tenancyv1alpha1.WorkspaceLabel],
		summary:   summary,
		auditTime: annotations[AuditTimeAnnotation],
		results:   results,
	}
}

// Summary is the body of GET /api/v1/summary.
type Summary struct {
	// LastAuditTime is the start of the last audit scan that wrote the
	// ClusterReport. Empty before the first scan.
	LastAuditTime string `json:"lastAuditTime,omitempty"`
	// ScanErrors counts the API groups and resources the last audit could
	// not read.
	ScanErrors int                `json:"scanErrors"`
	Workspaces []WorkspaceSummary `json:"workspaces"`
	Policies   []PolicySummary    `json:"policies"`
}

// WorkspaceSummary counts the violations in one Workspace's namespaces.
// Audit counts come from the report summaries, so they are complete even
// when a report lists only its first results.
type WorkspaceSummary struct {
	Name                string   `json:"name"`
	Namespaces          []string `json:"namespaces"`
	AuditViolations     int      `json:"auditViolations"`
	AuditErrors         int      `json:"auditErrors"`
	AdmissionViolations int      `json:"admissionViolations"`
}

// PolicySummary counts one policy's violations. AuditViolations is the
// Policy's status.violationCount.
type PolicySummary struct {
	ID                  string `json:"id"`
	Name                string `json:"name,omitempty"`
	Severity            string `json:"severity,omitempty"`
	Category            string `json:"category,omitempty"`
	AuditViolations     *int64 `json:"auditViolations,omitempty"`
	LastAuditTime       string `json:"lastAuditTime,omitempty"`
	AdmissionViolations int    `json:"admissionViolations"`
}

func (a *ReadAPI) serveSummary(w http.ResponseWriter, r *http.Request) {
	reports, err := a.listReports(r.Context(), nil)
	if err != nil {
		writeReadError(w, err)
		return
	}
	policies := &pacv2beta3.PolicyList{}
	if err := a.Reader.List(r.Context(), policies); err != nil {
		writeReadError(w, fmt.Errorf("list Policies: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, buildSummary(reports, policies.Items))
}

// buildSummary counts the violations per Workspace and per policy.
func buildSummary(reports []storedReport, policies []pacv2beta3.Policy) Summary {
	summary := Summary{Workspaces: []WorkspaceSummary{}, Policies: []PolicySummary{}}
	workspaces := map[string]*WorkspaceSummary{}
	workspace := func(name string) *WorkspaceSummary {
		ws, ok := workspaces[name]
		if !ok {
			ws = &WorkspaceSummary{Name: name, Namespaces: []string{}}
			workspaces[name] = ws
		}
		return ws
	}
	admissionByPolicy := map[string]int{}

	for i := range reports {
		report := &reports[i]
		if report.namespace == "" && report.source == SourceAudit {
			summary.LastAuditTime = report.auditTime
			for j := range report.results {
				if report.results[j].Policy == AuditScanPolicy {
					summary.ScanErrors++
				}
			}
		}
		var ws *WorkspaceSummary
		if report.workspace != "" {
			ws = workspace(report.workspace)
			if !slices.Contains(ws.Namespaces, report.namespace) {
				ws.Namespaces = append(ws.Namespaces, report.namespace)
			}
		}
		switch report.source {
		case SourceAudit:
			if ws != nil {
				ws.AuditViolations += report.summary.Fail
				ws.AuditErrors += report.summary.Error
			}
		case SourceAdmission:
			for j := range report.results {
				result := &report.results[j]
				admissionByPolicy[result.Policy]++
				if name := result.Properties[PropertyWorkspace]; name != "" {
					workspace(name).AdmissionViolations++
				}
			}
		}
	}

	for _, ws := range workspaces {
		slices.Sort(ws.Namespaces)
		summary.Workspaces = append(summary.Workspaces, *ws)
	}
	slices.SortFunc(summary.Workspaces, func(a, b WorkspaceSummary) int { return strings.Compare(a.Name, b.Name) })

	for i := range policies {
		p := &policies[i]
		ps := PolicySummary{
			ID:                  p.Name,
			Name:                p.Spec.Name,
			Severity:            p.Spec.Severity,
			Category:            p.Spec.Category,
			AuditViolations:     p.Status.ViolationCount,
			AdmissionViolations: admissionByPolicy[p.Name],
		}
		if p.Status.LastAuditTime != nil {
			ps.LastAuditTime = p.Status.LastAuditTime.UTC().Format(time.RFC3339)
		}
		summary.Policies = append(summary.Policies, ps)
	}
	slices.SortFunc(summary.Policies, func(a, b PolicySummary) int { return strings.Compare(a.ID, b.ID) })
	return summary
}

func getOnly(handler http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: use GET", r.Method))
			return
		}
		handler(w, r)
	})
}

func writeReadError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrReportsNotInstalled) {
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, err)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
