package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

func policyResult(id, severity, namespace, name string, messages ...string) policy.Result {
	r := policy.Result{
		PolicyID:   id,
		PolicyName: "Name of " + id,
		Severity:   severity,
		Enforced:   true,
		Object:     policy.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: name},
	}
	for _, m := range messages {
		r.Occurrences = append(r.Occurrences, policy.Occurrence{Message: m})
	}
	return r
}

func TestAuditResultsCountsAndCaps(t *testing.T) {
	results := NewAuditResults(testTime, 3)
	for i := range 5 {
		name := fmt.Sprintf("web-%d", i)
		results.Add("team-a", "ws-a", []policy.Result{
			policyResult("low-policy", "low", "team-a", name, "low violation"),
			policyResult("high-policy", "high", "team-a", name, "high violation"),
			policyResult("passing", "high", "team-a", name),
		})
	}
	broken := policyResult("broken", "medium", "", "node-1")
	broken.Err = errors.New("policy evaluation timed out")
	results.Add("", "", []policy.Result{broken})
	results.Add("team-b", "", nil)

	if got := results.Objects(); got != 7 {
		t.Errorf("Objects() = %d, want 7", got)
	}
	if got := results.Namespaces(); strings.Join(got, ",") != ",team-a" {
		t.Errorf("Namespaces() = %q, want the cluster scope and team-a only", got)
	}

	listed, summary, workspace := results.scopeReport("team-a")
	if workspace != "ws-a" {
		t.Errorf("workspace = %q, want ws-a", workspace)
	}
	if summary.Pass != 5 {
		t.Errorf("summary pass = %d, want 5", summary.Pass)
	}
	if summary.Fail != 10 {
		t.Errorf("summary fail = %d, want 10: the summary counts results beyond the cap", summary.Fail)
	}
	if summary.Error != 0 {
		t.Errorf("summary error = %d, want 0", summary.Error)
	}
	if len(listed) != 3 {
		t.Fatalf("listed %d results, want the cap of 3", len(listed))
	}
	for _, r := range listed {
		if r.Policy != "high-policy" {
			t.Errorf("listed result of %s, want only the worst severity to survive the cap", r.Policy)
		}
		if r.Result != StatusFail {
			t.Errorf("result = %q, want fail", r.Result)
		}
		if got := r.Properties[PropertyWorkspace]; got != "ws-a" {
			t.Errorf("workspace property = %q, want ws-a", got)
		}
		if got := r.Properties[PropertySource]; got != SourceAudit {
			t.Errorf("source property = %q, want audit", got)
		}
	}

	counts := results.PolicyCounts()
	if got := counts["high-policy"].Violations; got != 5 {
		t.Errorf("violations of high-policy = %d, want 5", got)
	}
	if got := counts["low-policy"].Violations; got != 5 {
		t.Errorf("violations of low-policy = %d, want 5", got)
	}
	if got := counts["broken"].Errors; got != 1 {
		t.Errorf("errors of broken = %d, want 1", got)
	}
	if _, ok := counts["passing"]; !ok {
		t.Errorf("PolicyCounts() lacks the passing policy, whose count is 0")
	}
	ws := results.WorkspaceCounts()["ws-a"]
	if ws.Violations != 10 {
		t.Errorf("violations of ws-a = %d, want 10", ws.Violations)
	}
	if ws.WorstSeverity != "high" {
		t.Errorf("worst severity of ws-a = %q, want high", ws.WorstSeverity)
	}

	_, clusterSummary, _ := results.scopeReport("")
	if clusterSummary.Error != 1 {
		t.Errorf("cluster summary = %+v, want one error", clusterSummary)
	}
}

func TestMergeAdmissionResults(t *testing.T) {
	admission := func(name, message string, at time.Time) Record {
		r := testRecord("td.cpu-limit", "team-a", name, message)
		r.Source = SourceAdmission
		r.Time = at
		r.Admission = &AdmissionDetails{Operation: "CREATE", User: "alice", Denied: true}
		return r
	}
	merged := MergeAdmissionResults(nil, []Record{
		admission("web", "no CPU limit", testTime),
		admission("db", "no CPU limit", testTime.Add(time.Second)),
	}, 3)
	if len(merged) != 2 || firstSubject(&merged[0]).Name != "db" {
		t.Fatalf("merged = %v, want db (newest) first", subjectNames(merged))
	}

	// The same violation again moves to the front and counts 2.
	merged = MergeAdmissionResults(merged, []Record{admission("web", "no CPU limit", testTime.Add(time.Minute))}, 3)
	if got := subjectNames(merged); got != "web,db" {
		t.Errorf("order = %s, want web,db", got)
	}
	if merged[0].Properties[PropertyCount] != "2" {
		t.Errorf("count = %q, want 2", merged[0].Properties[PropertyCount])
	}
	if merged[0].Result != StatusFail {
		t.Errorf("result = %q, want fail for a denied request", merged[0].Result)
	}

	// New violations push the oldest out beyond the cap.
	merged = MergeAdmissionResults(merged, []Record{
		admission("api", "no CPU limit", testTime.Add(2*time.Minute)),
		admission("cache", "no CPU limit", testTime.Add(3*time.Minute)),
	}, 3)
	if got := subjectNames(merged); got != "cache,api,web" {
		t.Errorf("order = %s, want cache,api,web", got)
	}
}

func subjectNames(results []openreportsv1alpha1.ReportResult) string {
	names := make([]string, len(results))
	for i := range results {
		names[i] = firstSubject(&results[i]).Name
	}
	return strings.Join(names, ",")
}

func TestAdmissionRecords(t *testing.T) {
	dryRun := true
	obj := deploymentObject("team-a", "web")
	enforced := policyResult("enforced", "high", "team-a", "web", "violation")
	warned := policyResult("warned", "low", "team-a", "web", "violation")
	warned.Enforced = false
	passing := policyResult("passing", "low", "team-a", "web")
	results := []policy.Result{enforced, warned, passing}
	req := &admissionv1.AdmissionRequest{Operation: admissionv1.Create, UserInfo: authenticationv1.UserInfo{Username: "alice"}}

	records := AdmissionRecords(testTime, req, obj, "ws-a", results, true)
	if len(records) != 2 {
		t.Fatalf("got %d records, want one per violation", len(records))
	}
	if !records[0].Admission.Denied {
		t.Errorf("the enforced violation is not marked denied")
	}
	if records[1].Admission.Denied {
		t.Errorf("the violation of a policy that is not enforced is marked denied")
	}
	if records[0].Workspace != "ws-a" {
		t.Errorf("workspace = %q, want ws-a", records[0].Workspace)
	}
	if records[0].Admission.User != "alice" {
		t.Errorf("user = %q, want alice", records[0].Admission.User)
	}

	req.DryRun = &dryRun
	if got := AdmissionRecords(testTime, req, obj, "ws-a", results, true); len(got) != 0 {
		t.Errorf("a dry-run request yielded %d records, want none", len(got))
	}
}

func TestFailedKindMatchesGroupVersionAndKind(t *testing.T) {
	result := func(apiVersion, kind string) *openreportsv1alpha1.ReportResult {
		r := auditResultFor(apiVersion, kind)
		return &r
	}
	discovery := []ScanFailure{{GroupVersion: schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}}}
	listing := []ScanFailure{{GroupVersion: schema.GroupVersion{Group: "apps", Version: "v1"}, Resource: "deployments", Kind: "Deployment"}}

	if !failedKind(discovery, result("metrics.k8s.io/v1beta1", "PodMetrics")) {
		t.Error("a kind of a group that failed discovery is not matched")
	}
	if failedKind(discovery, result("apps/v1", "Deployment")) {
		t.Error("a kind of another group is matched")
	}
	if !failedKind(listing, result("apps/v1", "Deployment")) {
		t.Error("the kind whose listing failed is not matched")
	}
	if failedKind(listing, result("apps/v1", "StatefulSet")) {
		t.Error("another kind of the group whose listing failed is matched")
	}
}

func auditResultFor(apiVersion, kind string) openreportsv1alpha1.ReportResult {
	r := policyResult("p", "low", "ns", "name", "m")
	r.Object.APIVersion = apiVersion
	r.Object.Kind = kind
	result, _ := auditResult(&r, "", testTime)
	return result
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 10) // 20 bytes
	got := truncate(s, 10)
	if len(got) > 10 {
		t.Errorf("len = %d, want at most 10", len(got))
	}
	if !strings.HasSuffix(got, "...") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("truncate = %q, want whole runes and an ellipsis", got)
	}
}
