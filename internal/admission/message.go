package admission

import (
	"fmt"
	"strings"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// Size bounds of the messages returned to the client. The API server adds
// the denial message to the error that kubectl prints, and truncates long
// or many warnings, so both stay short.
const (
	// maxDenialMessage bounds the whole denial message in bytes.
	maxDenialMessage = 4096
	// maxPolicyLine bounds the line of one policy in the denial message.
	maxPolicyLine = 1024
	// maxWarning bounds one warning. The AdmissionResponse API documents
	// that warnings over 256 characters may be truncated.
	maxWarning = 256
	// maxWarnings bounds the number of warnings. The last one then counts
	// and lists the remaining violated policies.
	maxWarnings = 20
)

// Decision sorts the results of one admission request.
type Decision struct {
	// Denied are the violated policies that are enforced.
	Denied []policy.Result
	// Warned are the violated policies that are not enforced.
	Warned []policy.Result
	// Errored are the policies that could not be evaluated.
	Errored []policy.Result
	// Passed are the policies the object complies with.
	Passed []policy.Result
}

// Decide sorts results into a Decision. A policy that errored is never a
// violation.
func Decide(results []policy.Result) Decision {
	var d Decision
	for _, r := range results {
		switch {
		case r.Err != nil:
			d.Errored = append(d.Errored, r)
		case !r.Violated():
			d.Passed = append(d.Passed, r)
		case r.Enforced:
			d.Denied = append(d.Denied, r)
		default:
			d.Warned = append(d.Warned, r)
		}
	}
	return d
}

// DenialMessage returns the reason of a denial: a header that names the
// object, then one line per enforced policy that it violates with the
// policy's ID and name, its occurrence messages and how to solve it. Lines
// that would pass maxDenialMessage are replaced by a last line that lists
// the IDs of the remaining policies.
func DenialMessage(obj policy.ObjectRef, denied []policy.Result) string {
	var b strings.Builder
	noun := "policy"
	if len(denied) != 1 {
		noun = "policies"
	}
	fmt.Fprintf(&b, "%s %s violates %d enforced %s:", obj.Kind, objectName(obj), len(denied), noun)
	for i := range denied {
		line := "\n- " + truncate(policyLine(&denied[i]), maxPolicyLine)
		if b.Len()+len(line) > maxDenialMessage {
			rest := make([]string, 0, len(denied)-i)
			for j := i; j < len(denied); j++ {
				rest = append(rest, denied[j].PolicyID)
			}
			more := fmt.Sprintf("\n- and %d more: %s", len(rest), strings.Join(rest, ", "))
			b.WriteString(truncate(more, max(maxDenialMessage-b.Len(), 0)))
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// Warnings returns one warning per violated policy that is not enforced,
// at most maxWarnings of them.
func Warnings(warned []policy.Result) []string {
	return cappedWarnings(warned, maxWarnings,
		func(r *policy.Result) string { return "policy not enforced: " + policyLine(r) },
		"%d more policies that are not enforced are violated: %s")
}

// maxErrorWarnings bounds the warnings about policies that could not be
// evaluated. The last one then lists the IDs of the rest.
const maxErrorWarnings = 5

// ErrorWarnings returns one admission warning per policy that could not be
// evaluated, so that the client learns which policies did not check its
// request, and at most maxErrorWarnings of them.
func ErrorWarnings(errored []policy.Result) []string {
	return cappedWarnings(errored, maxErrorWarnings, func(r *policy.Result) string {
		kind := "policy"
		if r.Enforced {
			kind = "enforced policy"
		}
		return fmt.Sprintf("%s %s could not be evaluated and did not check this request: %s",
			kind, r.PolicyID, oneLine(r.Err.Error()))
	}, "%d more policies could not be evaluated and did not check this request: %s")
}

// cappedWarnings returns line(r) for each result, each cut to maxWarning
// bytes. Beyond limit results, the last warning is restFormat filled with
// the number and the comma-separated IDs of the remaining results.
func cappedWarnings(results []policy.Result, limit int, line func(*policy.Result) string, restFormat string) []string {
	if len(results) == 0 {
		return nil
	}
	warnings := make([]string, 0, min(len(results), limit))
	for i := range results {
		if i == limit-1 && len(results) > limit {
			rest := make([]string, 0, len(results)-i)
			for j := i; j < len(results); j++ {
				rest = append(rest, results[j].PolicyID)
			}
			warnings = append(warnings, truncate(fmt.Sprintf(restFormat, len(rest), strings.Join(rest, ", ")), maxWarning))
			break
		}
		warnings = append(warnings, truncate(line(&results[i]), maxWarning))
	}
	return warnings
}

// policyLine returns "<id> (<name>): <msg>; <msg>. How to solve: <text>",
// with every run of white space collapsed to one space.
func policyLine(r *policy.Result) string {
	var b strings.Builder
	b.WriteString(r.PolicyID)
	if r.PolicyName != "" && r.PolicyName != r.PolicyID {
		b.WriteString(" (")
		b.WriteString(oneLine(r.PolicyName))
		b.WriteString(")")
	}
	b.WriteString(": ")
	for i, o := range r.Occurrences {
		if i > 0 {
			b.WriteString("; ")
		}
		msg := oneLine(o.Message)
		if msg == "" {
			msg = "violation"
		}
		b.WriteString(msg)
	}
	if how := oneLine(r.HowToSolve); how != "" {
		b.WriteString(". How to solve: ")
		b.WriteString(how)
	}
	return b.String()
}

// oneLine collapses every run of white space, newlines included, into one
// space.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func objectName(obj policy.ObjectRef) string {
	if obj.Namespace == "" {
		return obj.Name
	}
	return obj.Namespace + "/" + obj.Name
}

// truncate shortens s to at most limit bytes without splitting a UTF-8
// sequence and marks the cut with an ellipsis.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	if limit < len(ellipsis) {
		return ""
	}
	cut := limit - len(ellipsis)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + ellipsis
}
