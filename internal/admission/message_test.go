package admission

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

var deployment = policy.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "web"}

func violated(id string, enforced bool, messages ...string) policy.Result {
	r := policy.Result{PolicyID: id, PolicyName: "Name of " + id, Enforced: enforced, Object: deployment}
	for _, m := range messages {
		r.Occurrences = append(r.Occurrences, policy.Occurrence{Message: m})
	}
	return r
}

func TestDecide(t *testing.T) {
	results := []policy.Result{
		violated("denied", true, "m"),
		violated("warned", false, "m"),
		{PolicyID: "errored", Enforced: true, Err: errors.New("timed out"),
			Occurrences: []policy.Occurrence{{Message: "ignored"}}},
		{PolicyID: "passed", Enforced: true},
	}
	d := Decide(results)
	for _, check := range []struct {
		name string
		got  []policy.Result
		want string
	}{
		{"Denied", d.Denied, "denied"},
		{"Warned", d.Warned, "warned"},
		{"Errored", d.Errored, "errored"},
		{"Passed", d.Passed, "passed"},
	} {
		if len(check.got) != 1 || check.got[0].PolicyID != check.want {
			t.Errorf("Decide().%s = %v, want only %s", check.name, check.got, check.want)
		}
	}
}

func TestDenialMessage(t *testing.T) {
	withHowTo := violated("td.run-as-non-root", true, "container \"app\" runs as root", "container \"sidecar\"\nruns as root")
	withHowTo.HowToSolve = "Set securityContext.runAsNonRoot:\n  true on every container."
	noName := violated("td.replicas", true, "too many replicas")
	noName.PolicyName = ""
	emptyMessage := violated("td.empty", true, "")

	tests := []struct {
		name   string
		obj    policy.ObjectRef
		denied []policy.Result
		want   string
	}{{
		name:   "one policy with occurrences joined and how to solve on one line",
		obj:    deployment,
		denied: []policy.Result{withHowTo},
		want: "Deployment team-a/web violates 1 enforced policy:\n" +
			`- td.run-as-non-root (Name of td.run-as-non-root): container "app" runs as root; container "sidecar" runs as root. ` +
			"How to solve: Set securityContext.runAsNonRoot: true on every container.",
	}, {
		name:   "several policies, one line each, without a name or message",
		obj:    policy.ObjectRef{Kind: "ClusterRole", Name: "admin-all"},
		denied: []policy.Result{noName, emptyMessage},
		want: "ClusterRole admin-all violates 2 enforced policies:\n" +
			"- td.replicas: too many replicas\n" +
			"- td.empty (Name of td.empty): violation",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DenialMessage(tt.obj, tt.denied)); diff != "" {
				t.Errorf("DenialMessage() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDenialMessageSizeBound(t *testing.T) {
	long := strings.Repeat("x", 5000)
	var denied []policy.Result
	for i := range 30 {
		denied = append(denied, violated(fmt.Sprintf("td.policy-%02d", i), true, long))
	}
	got := DenialMessage(deployment, denied)
	if len(got) > maxDenialMessage {
		t.Errorf("len(DenialMessage()) = %d, want at most %d", len(got), maxDenialMessage)
	}
	lines := strings.Split(got, "\n")
	if first := lines[1]; len(first) > maxPolicyLine+len("- ") {
		t.Errorf("first policy line has %d bytes, want at most %d", len(first), maxPolicyLine+2)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "- and ") || !strings.Contains(last, "td.policy-04") {
		t.Errorf("last line = %q, want the IDs of the policies that did not fit", last)
	}
}

func TestWarnings(t *testing.T) {
	withHowTo := violated("td.image-tag", false, "image app:latest uses the latest tag")
	withHowTo.HowToSolve = "Pin a version."
	if got := Warnings(nil); got != nil {
		t.Errorf("Warnings(nil) = %v, want nil", got)
	}
	want := []string{"policy not enforced: td.image-tag (Name of td.image-tag): image app:latest uses the latest tag. How to solve: Pin a version."}
	if diff := cmp.Diff(want, Warnings([]policy.Result{withHowTo})); diff != "" {
		t.Errorf("Warnings() mismatch (-want +got):\n%s", diff)
	}

	long := violated("td.long", false, strings.Repeat("é", 400))
	if got := Warnings([]policy.Result{long})[0]; len(got) > maxWarning || !strings.HasSuffix(got, "...") {
		t.Errorf("long warning has %d bytes and ends %q, want at most %d bytes ending in ...", len(got), got[len(got)-5:], maxWarning)
	}

	var many []policy.Result
	for i := range maxWarnings + 5 {
		many = append(many, violated(fmt.Sprintf("td.w-%02d", i), false, "m"))
	}
	got := Warnings(many)
	if len(got) != maxWarnings {
		t.Fatalf("len(Warnings()) = %d, want %d", len(got), maxWarnings)
	}
	if last := got[maxWarnings-1]; !strings.HasPrefix(last, "6 more policies that are not enforced are violated: td.w-19, ") {
		t.Errorf("last warning = %q, want the count and IDs of the rest", last)
	}
}

func TestErrorWarnings(t *testing.T) {
	if got := ErrorWarnings(nil); got != nil {
		t.Errorf("ErrorWarnings(nil) = %v, want nil", got)
	}
	errored := []policy.Result{
		{PolicyID: "td.slow", Enforced: true, Err: errors.New("policy evaluation timed out after 2s:\n policy td.slow")},
		{PolicyID: "td.audit-only", Err: errors.New("invalid policy parameters")},
	}
	want := []string{
		"enforced policy td.slow could not be evaluated and did not check this request: policy evaluation timed out after 2s: policy td.slow",
		"policy td.audit-only could not be evaluated and did not check this request: invalid policy parameters",
	}
	if diff := cmp.Diff(want, ErrorWarnings(errored)); diff != "" {
		t.Errorf("ErrorWarnings() mismatch (-want +got):\n%s", diff)
	}

	var many []policy.Result
	for i := range maxErrorWarnings + 2 {
		many = append(many, policy.Result{PolicyID: fmt.Sprintf("td.e-%d", i), Enforced: true, Err: errors.New("failed")})
	}
	got := ErrorWarnings(many)
	if len(got) != maxErrorWarnings {
		t.Fatalf("len(ErrorWarnings()) = %d, want %d", len(got), maxErrorWarnings)
	}
	if last := got[maxErrorWarnings-1]; last != "3 more policies could not be evaluated and did not check this request: td.e-4, td.e-5, td.e-6" {
		t.Errorf("last warning = %q, want the count and IDs of the rest", last)
	}
}

func TestErrorLimiter(t *testing.T) {
	var l errorLimiter
	start := time.Unix(0, 0)
	steps := []struct {
		policy         string
		at             time.Duration
		wantLog        bool
		wantSuppressed int
	}{
		{"a", 0, true, 0},
		{"a", 10 * time.Second, false, 0},
		{"b", 10 * time.Second, true, 0},
		{"a", 20 * time.Second, false, 0},
		{"a", errorLogInterval + time.Second, true, 2},
		{"a", errorLogInterval + 2*time.Second, false, 0},
	}
	for i, s := range steps {
		suppressed, ok := l.allow(s.policy, start.Add(s.at))
		if ok != s.wantLog || suppressed != s.wantSuppressed {
			t.Errorf("step %d: allow(%s) = %d, %t, want %d, %t", i, s.policy, suppressed, ok, s.wantSuppressed, s.wantLog)
		}
	}
}
