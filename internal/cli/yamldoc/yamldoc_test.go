package yamldoc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseDocuments(t *testing.T) {
	data := []byte(`# leading comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  count: "3"
---
---
apiVersion: v1
kind: List
items: []
number: 3
float: 1.5
flag: true
none: null
date: 2024-01-02
base: &base {x: 1}
merged:
  <<: *base
  y: 2
`)
	docs, err := Parse("multi.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2 (the empty one is left out)", len(docs))
	}
	if docs[0].Line != 2 || docs[1].Line != 10 {
		t.Errorf("document lines %d and %d, want 2 and 10", docs[0].Line, docs[1].Line)
	}
	second := docs[1].Object.(map[string]any)
	want := map[string]any{
		"number": int64(3),
		"float":  1.5,
		"flag":   true,
		"none":   nil,
		"date":   "2024-01-02",
		"merged": map[string]any{"x": int64(1), "y": int64(2)},
	}
	for key, value := range want {
		if !reflect.DeepEqual(second[key], value) {
			t.Errorf("%s = %#v, want %#v", key, second[key], value)
		}
	}
	if items, ok := second["items"].([]any); !ok || len(items) != 0 {
		t.Errorf("items = %#v, want an empty list", second["items"])
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		line    int
		message string
	}{
		{"bad indentation", "a:\n  b: 1\n c: 2\n", 3, "invalid YAML"},
		{"unclosed flow list", "a: 1\nb: [x, y\nc: 3\n", 2, "invalid YAML"},
		{"tab indentation", "a:\n\tb: 1\n", 2, "invalid YAML"},
		{"second document", "a: 1\n---\nb: [\n", 3, "invalid YAML"},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", 3, `duplicate key "a"`},
		{"infinity", "a: .inf\n", 1, "has no JSON representation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.data))
			var fileErr *Error
			if !errors.As(err, &fileErr) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if fileErr.Line != tt.line {
				t.Errorf("line %d, want %d: %v", fileErr.Line, tt.line, err)
			}
			if fileErr.File != "f.yaml" {
				t.Errorf("file %q, want f.yaml", fileErr.File)
			}
			if !strings.Contains(fileErr.Message, tt.message) {
				t.Errorf("message %q does not contain %q", fileErr.Message, tt.message)
			}
		})
	}
}

func TestLineOf(t *testing.T) {
	docs, err := Parse("p.yaml", []byte("spec:\n  name: x\n  code: |\n    package x\n  inline: \"a\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if line, block := LineOf(docs[0].Node, "spec", "code"); line != 3 || !block {
		t.Errorf("spec.code at line %d (block %v), want 3 (block true)", line, block)
	}
	if line, block := LineOf(docs[0].Node, "spec", "inline"); line != 5 || block {
		t.Errorf("spec.inline at line %d (block %v), want 5 (block false)", line, block)
	}
	if line, _ := LineOf(docs[0].Node, "spec", "missing"); line != 0 {
		t.Errorf("missing field at line %d, want 0", line)
	}
}
