// Package yamldoc reads YAML streams into JSON-style values, one document
// at a time, and keeps the line of each document and the position of syntax
// errors, for messages that point into the file.
package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"go.yaml.in/yaml/v3"
)

// Document is one YAML (or JSON) document of a file.
type Document struct {
	// Line is the first line of the document's content, 1-based.
	Line int
	// Object is the content as JSON values, never nil: Parse leaves out
	// empty documents.
	Object any
	// Node is the content node, to find the line of a field later.
	Node *yaml.Node
}

// Parse splits a YAML stream into documents, leaving out empty ones. A
// syntax error is an *Error that names the file and line.
func Parse(name string, data []byte) ([]Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, NewSyntaxError(name, data, err)
		}
		content := &node
		if node.Kind == yaml.DocumentNode {
			if len(node.Content) == 0 {
				continue
			}
			content = node.Content[0]
		}
		value, err := jsonValue(content)
		if err != nil {
			var valueErr *valueError
			if errors.As(err, &valueErr) {
				return nil, &Error{File: name, Line: valueErr.line, Message: valueErr.message}
			}
			return nil, &Error{File: name, Message: err.Error()}
		}
		if value == nil {
			continue
		}
		docs = append(docs, Document{Line: content.Line, Object: value, Node: content})
	}
}

// valueError is a YAML value that has no JSON equivalent.
type valueError struct {
	line    int
	message string
}

func (e *valueError) Error() string { return e.message }

// jsonValue converts a YAML node into the values that encoding/json
// produces and unstructured objects hold: map[string]any, []any, string,
// int64, float64, bool and nil. Timestamps and binary values stay strings,
// as the API server reads them.
func jsonValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return jsonValue(n.Content[0])
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &valueError{n.Line, "alias without an anchor"}
		}
		return jsonValue(n.Alias)
	case yaml.MappingNode:
		return jsonMapping(n)
	case yaml.SequenceNode:
		items := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := jsonValue(item)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		return items, nil
	case yaml.ScalarNode:
		return jsonScalar(n)
	}
	return nil, &valueError{n.Line, "unsupported YAML node"}
}

// jsonMapping converts a mapping. Merge keys (<<) add the keys of the
// merged mappings that the mapping does not set itself.
func jsonMapping(n *yaml.Node) (any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merged []map[string]any
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		if key.Kind != yaml.ScalarNode {
			return nil, &valueError{key.Line, "a mapping key must be a scalar"}
		}
		v, err := jsonValue(value)
		if err != nil {
			return nil, err
		}
		if key.Tag == "!!merge" {
			maps, err := mergedMappings(v, key.Line)
			if err != nil {
				return nil, err
			}
			merged = append(merged, maps...)
			continue
		}
		if _, ok := out[key.Value]; ok {
			return nil, &valueError{key.Line, fmt.Sprintf("duplicate key %q", key.Value)}
		}
		out[key.Value] = v
	}
	for _, m := range merged {
		for key, value := range m {
			if _, ok := out[key]; !ok {
				out[key] = value
			}
		}
	}
	return out, nil
}

func mergedMappings(v any, line int) ([]map[string]any, error) {
	switch merged := v.(type) {
	case map[string]any:
		return []map[string]any{merged}, nil
	case []any:
		maps := make([]map[string]any, 0, len(merged))
		for _, item := range merged {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, &valueError{line, "a merge key (<<) needs a mapping or a list of mappings"}
			}
			maps = append(maps, m)
		}
		return maps, nil
	}
	return nil, &valueError{line, "a merge key (<<) needs a mapping or a list of mappings"}
}

func jsonScalar(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, &valueError{n.Line, err.Error()}
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, &valueError{n.Line, fmt.Sprintf("invalid integer %q", n.Value)}
		}
		return f, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, &valueError{n.Line, fmt.Sprintf("invalid number %q", n.Value)}
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &valueError{n.Line, fmt.Sprintf("%q has no JSON representation; quote it to make it a string", n.Value)}
		}
		return f, nil
	}
	return n.Value, nil
}

// LineOf returns the line of the value at the path of mapping keys
// under n, or 0 when the path does not exist.
func LineOf(n *yaml.Node, path ...string) (line int, block bool) {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return 0, false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	if n == nil {
		return 0, false
	}
	return n.Line, n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
}
