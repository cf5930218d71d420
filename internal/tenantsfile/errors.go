package tenantsfile

import (
	"fmt"
	"strings"
)

// Error is one problem in a tenants file.
type Error struct {
	// File is the name of the file as given by the caller.
	File string
	// Line and Column locate the problem, 1-based; 0 when unknown.
	Line, Column int
	// Field is the path of the field, such as tenants[1].namespaces[0];
	// empty for YAML syntax errors.
	Field string
	// Message describes the problem.
	Message string
}

// Error formats the problem as FILE:LINE:COLUMN: FIELD: MESSAGE, leaving out
// the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is every problem found in a tenants file, in the order of the
// file.
type ErrorList []*Error

// Error lists the problems, one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
