package cli

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
)

// The JUnit XML elements that CI systems read: testsuites, testsuite,
// testcase, failure and error.
type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name     string          `xml:"name,attr"`
	Tests    int             `xml:"tests,attr"`
	Failures int             `xml:"failures,attr"`
	Errors   int             `xml:"errors,attr"`
	Cases    []junitTestCase `xml:"testcase"`
}

type junitTestCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// writeJUnit writes one test suite per input file and one test case per
// object and applicable policy. A violation is a failure, whether or not it
// sets the exit code; a policy that could not be evaluated is an error.
func (r *validationReport) writeJUnit(w io.Writer) error {
	suites := junitTestSuites{Name: "tdctl validate", Suites: []junitTestSuite{}}
	byFile := r.objectsByFile()
	for _, file := range r.files {
		suite := junitTestSuite{Name: file, Cases: []junitTestCase{}}
		for _, obj := range byFile[file] {
			for i := range obj.results {
				res := &obj.results[i]
				tc := junitTestCase{
					Name:      fmt.Sprintf("%s: %s", describeObject(obj.manifest), res.PolicyID),
					ClassName: obj.manifest.location(),
				}
				switch {
				case res.Err != nil:
					tc.Error = &junitProblem{Message: res.Err.Error(), Type: "EvaluationError", Text: res.Err.Error()}
					suite.Errors++
				case res.Violated():
					tc.Failure = r.junitFailure(res.PolicyName, res.Severity, res.HowToSolve, res.Occurrences, r.qualifier(res))
					suite.Failures++
				}
				suite.Cases = append(suite.Cases, tc)
			}
		}
		suite.Tests = len(suite.Cases)
		suites.Tests += suite.Tests
		suites.Failures += suite.Failures
		suites.Errors += suite.Errors
		suites.Suites = append(suites.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suites); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (r *validationReport) junitFailure(name, severity, howToSolve string, occurrences []policy.Occurrence, qualifier string) *junitProblem {
	var text strings.Builder
	for _, o := range occurrences {
		fmt.Fprintf(&text, "message: %s\n", o.Message)
		if o.ViolatingKey != "" {
			fmt.Fprintf(&text, "violating_key: %s\n", o.ViolatingKey)
		}
		if o.RecommendedValue != nil {
			fmt.Fprintf(&text, "recommended_value: %s\n", jsonString(o.RecommendedValue))
		}
	}
	if howToSolve != "" {
		fmt.Fprintf(&text, "how_to_solve: %s\n", strings.TrimSpace(howToSolve))
	}
	message := name
	if len(occurrences) > 0 && occurrences[0].Message != "" {
		message = occurrences[0].Message
	}
	return &junitProblem{Message: message + qualifier, Type: severity, Text: text.String()}
}
