package report

import (
	"slices"
	"sync"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// DefaultMaxResults is the default maximum number of results in one report.
// The API server rejects objects larger than about 1.5 MiB, and a result
// takes roughly 0.5 KiB.
const DefaultMaxResults = 1000

// AuditResults aggregates the results of one audit scan: the listed
// results of each namespace and of the cluster scope, capped at MaxResults
// per report with the worst kept, and complete counts per namespace, policy
// and Workspace. It is safe for concurrent use by the scan's workers.
type AuditResults struct {
	// Time is when the scan started. Every result carries it.
	Time time.Time
	// MaxResults caps the results of each report.
	MaxResults int

	mu         sync.Mutex
	scopes     map[string]*scopeResults
	policies   map[string]*PolicyCount
	workspaces map[string]*WorkspaceCount
	objects    int
	failures   []ScanFailure
	// complete is false until the scan finished without being cancelled.
	complete bool
}

// scopeResults are the results of one namespace, or of cluster-scoped
// objects under the key "".
type scopeResults struct {
	results []openreportsv1alpha1.ReportResult
	summary openreportsv1alpha1.ReportSummary
	// workspace is the Workspace of the namespace.
	workspace string
	// sorted is true while results are in compareResults order.
	sorted bool
}

// PolicyCount is the number of violations of one policy.
type PolicyCount struct {
	Violations int64
	Errors     int64
}

// WorkspaceCount is the number of violations in one Workspace's namespaces
// and the worst severity among them.
type WorkspaceCount struct {
	Violations    int64
	WorstSeverity string
}

// ScanFailure is a part of the cluster that the scan could not read.
type ScanFailure struct {
	// GroupVersion failed discovery or, with Resource set, listing.
	GroupVersion schema.GroupVersion
	// Resource is the resource that could not be listed. Empty for a
	// discovery failure of the whole group version.
	Resource string
	// Kind is the resource's kind. Empty for a discovery failure.
	Kind    string
	Message string
}

// NewAuditResults returns an empty aggregate for a scan that started at t.
func NewAuditResults(t time.Time, maxResults int) *AuditResults {
	if maxResults <= 0 {
		maxResults = DefaultMaxResults
	}
	return &AuditResults{
		Time:       t,
		MaxResults: maxResults,
		scopes:     map[string]*scopeResults{},
		policies:   map[string]*PolicyCount{},
		workspaces: map[string]*WorkspaceCount{},
	}
}

// Add records the results of one object in namespace (empty for a
// cluster-scoped object) of workspace (empty when none).
func (a *AuditResults) Add(namespace, workspace string, results []policy.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.objects++
	if len(results) == 0 {
		// No policy applies to the object, so its namespace needs no
		// report for it.
		return
	}
	scope := a.scope(namespace)
	scope.workspace = workspace
	for i := range results {
		r := &results[i]
		count := a.policyCount(r.PolicyID)
		if r.Err == nil && len(r.Occurrences) == 0 {
			scope.summary.Pass++
			continue
		}
		result, _ := auditResult(r, workspace, a.Time)
		addToSummary(&scope.summary, result.Result)
		if r.Err != nil {
			count.Errors++
		} else {
			count.Violations++
			if workspace != "" {
				ws := a.workspaceCount(workspace)
				ws.Violations++
				ws.WorstSeverity = WorseSeverity(ws.WorstSeverity, r.Severity)
			}
		}
		scope.add(result, a.MaxResults)
	}
}

// add appends a result and, when the list grew to twice the cap, sorts it
// and keeps the first max, so that memory stays bounded with amortized
// sorting.
func (s *scopeResults) add(result openreportsv1alpha1.ReportResult, maxResults int) {
	s.results = append(s.results, result)
	s.sorted = false
	if len(s.results) >= 2*maxResults {
		s.sortAndCap(maxResults)
	}
}

func (s *scopeResults) sortAndCap(maxResults int) {
	if !s.sorted {
		slices.SortFunc(s.results, func(a, b openreportsv1alpha1.ReportResult) int { return compareResults(&a, &b) })
		s.sorted = true
	}
	if len(s.results) > maxResults {
		clear(s.results[maxResults:])
		s.results = s.results[:maxResults]
	}
}

// AddFailure records a part of the cluster that the scan could not read.
func (a *AuditResults) AddFailure(f ScanFailure) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, f)
}

// SeePolicy makes the policy appear in PolicyCounts even without results.
func (a *AuditResults) SeePolicy(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.policyCount(id)
}

// SeeWorkspace makes the Workspace appear in WorkspaceCounts even without
// violations.
func (a *AuditResults) SeeWorkspace(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workspaceCount(name)
}

// MarkComplete records that the scan ran to its end.
func (a *AuditResults) MarkComplete() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.complete = true
}

// Complete reports whether the scan ran to its end.
func (a *AuditResults) Complete() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.complete
}

// Objects returns the number of objects evaluated.
func (a *AuditResults) Objects() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.objects
}

// Failures returns the parts of the cluster the scan could not read.
func (a *AuditResults) Failures() []ScanFailure {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.failures)
}

// PolicyCounts returns the counts per policy ID.
func (a *AuditResults) PolicyCounts() map[string]PolicyCount {
	a.mu.Lock()
	defer a.mu.Unlock()
	counts := make(map[string]PolicyCount, len(a.policies))
	for id, c := range a.policies {
		counts[id] = *c
	}
	return counts
}

// WorkspaceCounts returns the counts per Workspace name.
func (a *AuditResults) WorkspaceCounts() map[string]WorkspaceCount {
	a.mu.Lock()
	defer a.mu.Unlock()
	counts := make(map[string]WorkspaceCount, len(a.workspaces))
	for name, c := range a.workspaces {
		counts[name] = *c
	}
	return counts
}

// Namespaces returns the sorted namespaces with evaluated objects, with ""
// for the cluster scope.
func (a *AuditResults) Namespaces() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	namespaces := make([]string, 0, len(a.scopes))
	for ns := range a.scopes {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	return namespaces
}

// scopeReport returns the sorted, capped results and the summary of a
// namespace, or of the cluster scope for "".
func (a *AuditResults) scopeReport(namespace string) (results []openreportsv1alpha1.ReportResult, summary openreportsv1alpha1.ReportSummary, workspace string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	scope, ok := a.scopes[namespace]
	if !ok {
		return nil, openreportsv1alpha1.ReportSummary{}, ""
	}
	scope.sortAndCap(a.MaxResults)
	return slices.Clone(scope.results), scope.summary, scope.workspace
}

func (a *AuditResults) scope(namespace string) *scopeResults {
	s, ok := a.scopes[namespace]
	if !ok {
		s = &scopeResults{}
		a.scopes[namespace] = s
	}
	return s
}

func (a *AuditResults) policyCount(id string) *PolicyCount {
	c, ok := a.policies[id]
	if !ok {
		c = &PolicyCount{}
		a.policies[id] = c
	}
	return c
}

func (a *AuditResults) workspaceCount(name string) *WorkspaceCount {
	c, ok := a.workspaces[name]
	if !ok {
		c = &WorkspaceCount{}
		a.workspaces[name] = c
	}
	return c
}
