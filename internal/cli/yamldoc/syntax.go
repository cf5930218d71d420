package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxLinesToLocate bounds the files whose syntax errors NewSyntaxError
// locates by parsing prefixes, which costs one parse per line.
const maxLinesToLocate = 5000

// yamlErrorPrefix matches the line number in a go.yaml.in/yaml/v3 error.
var yamlErrorPrefix = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Error is a problem at a line of a file.
type Error struct {
	File string
	// Line is 1-based; 0 when unknown.
	Line    int
	Message string
}

// Error formats the problem as FILE:LINE: MESSAGE, or FILE: MESSAGE when
// the line is unknown.
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Message)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
}

// NewSyntaxError returns the syntax error err that decoding data, the
// content of file, produced, with the line where the problem is.
// go.yaml.in/yaml/v3 reports the line where the enclosing block starts,
// which may be far above the problem, so the line is instead the first
// line at which a prefix of data stops parsing. For files longer than
// maxLinesToLocate lines it keeps the decoder's line.
func NewSyntaxError(file string, data []byte, err error) *Error {
	message := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrorPrefix.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		message = m[2]
	}
	if located := firstFailingLine(data); located > 0 {
		line = located
	}
	return &Error{File: file, Line: line, Message: "invalid YAML: " + message}
}

// firstFailingLine returns the first line n such that lines 1 to n of data
// do not parse, or 0 when it cannot tell.
func firstFailingLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxLinesToLocate {
		return 0
	}
	end := 0
	for n, line := range lines {
		end += len(line)
		if !parses(data[:end]) {
			return n + 1
		}
	}
	return 0
}

func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
