package tenantsfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/trusted-delivery/trusted-delivery/internal/cli/yamldoc"
)

// position is the line and column of a field in the file, 1-based.
type position struct {
	line, column int
}

// decoder turns a YAML document into a File. It checks every key and value
// type against the File type, so that it can name the line of each problem,
// which decoding into the struct directly cannot.
type decoder struct {
	file string
	errs ErrorList
	// positions maps a field path (tenants[0].name) to the position of its
	// key, or of the list item.
	positions map[string]position
}

// parse decodes data into a File. Problems that leave the meaning of the
// file unclear (syntax errors, a second document, a root that is not a
// mapping) return no File. Unknown keys and values of the wrong type are
// recorded in d.errs and left out of the File, so that validation can still
// report the rest.
func (d *decoder) parse(data []byte) *File {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.addf(nil, position{}, "the file is empty: expected a mapping with a tenants list")
			return nil
		}
		d.addSyntaxError(data, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.addSyntaxError(data, err)
		return nil
	case !isEmptyDocument(&next):
		d.addf(nil, position{next.Line, next.Column},
			"the file contains more than one YAML document: a tenants file is one mapping with a tenants list")
		return nil
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if isNull(root) {
		d.addf(nil, position{root.Line, root.Column}, "the file is empty: expected a mapping with a tenants list")
		return nil
	}
	if resolveAlias(root).Kind != yaml.MappingNode {
		d.addf(nil, position{root.Line, root.Column},
			"expected a mapping with a tenants list, found %s", describe(root))
		return nil
	}
	value := d.value(root, reflect.TypeFor[File](), nil)

	// The walk returns only values of the field types, so the JSON round
	// trip fails only on a bug in the walk.
	data, err := json.Marshal(value)
	if err != nil {
		d.addf(nil, position{}, "convert the file to JSON: %v", err)
		return nil
	}
	f := &File{}
	if err := json.Unmarshal(data, f); err != nil {
		d.addf(nil, position{}, "decode the file: %v", err)
		return nil
	}
	return f
}

func (d *decoder) addSyntaxError(data []byte, err error) {
	syntaxErr := yamldoc.NewSyntaxError(d.file, data, err)
	d.addf(nil, position{line: syntaxErr.Line}, "%s", syntaxErr.Message)
}

func (d *decoder) addf(path *field.Path, pos position, format string, args ...any) {
	e := &Error{File: d.file, Line: pos.line, Column: pos.column, Message: fmt.Sprintf(format, args...)}
	if path != nil {
		e.Field = path.String()
	}
	d.errs = append(d.errs, e)
}

// record stores the position of the field at path, unless a position is
// already known for it.
func (d *decoder) record(path *field.Path, n *yaml.Node) {
	if path == nil {
		return
	}
	key := path.String()
	if _, ok := d.positions[key]; !ok {
		d.positions[key] = position{n.Line, n.Column}
	}
}

// positionOf returns the position of the field at path, or of its nearest
// parent with a known position.
func (d *decoder) positionOf(path *field.Path) position {
	if path == nil {
		return position{}
	}
	for key := path.String(); key != ""; key = parentKey(key) {
		if pos, ok := d.positions[key]; ok {
			return pos
		}
	}
	return position{}
}

// parentKey strips the last element of a field path string:
// tenants[0].name becomes tenants[0], and tenants[0] becomes tenants.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndex(key, "["); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndex(key, "."); i >= 0 {
		return key[:i]
	}
	return ""
}

// value checks n against t and returns its content as JSON-ready Go values:
// map[string]any, []any, string or bool. A null value returns nil, as JSON
// null decodes to the zero value. A value of the wrong type is recorded as
// an error and returns nil.
func (d *decoder) value(n *yaml.Node, t reflect.Type, path *field.Path) any {
	n = resolveAlias(n)
	if isNull(n) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return d.value(n, t.Elem(), path)
	case reflect.Struct:
		return d.object(n, t, path)
	case reflect.Slice:
		return d.list(n, t.Elem(), path)
	case reflect.Map:
		return d.mapping(n, t.Elem(), path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.addf(path, position{n.Line, n.Column}, "expected a string, found %s; quote the value to make it a string", describe(n))
			return nil
		}
		return n.Value
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.addf(path, position{n.Line, n.Column}, "expected true or false, found %s", describe(n))
			return nil
		}
		return b
	}
	d.addf(path, position{n.Line, n.Column}, "unsupported field type %s", t)
	return nil
}

// object checks a mapping against the JSON fields of the struct type t.
func (d *decoder) object(n *yaml.Node, t reflect.Type, path *field.Path) any {
	if n.Kind != yaml.MappingNode {
		d.addf(path, position{n.Line, n.Column}, "expected a mapping, found %s", describe(n))
		return nil
	}
	fields := jsonFields(t)
	out := map[string]any{}
	d.eachEntry(n, path, func(key string, keyNode, valueNode *yaml.Node) {
		child := childPath(path, key)
		fieldType, ok := fields[key]
		if !ok {
			d.addf(child, position{keyNode.Line, keyNode.Column}, "%s", unknownKeyMessage(key, fields))
			return
		}
		d.record(child, keyNode)
		if v := d.value(valueNode, fieldType, child); v != nil {
			out[key] = v
		}
	})
	return out
}

// mapping checks a mapping with string keys whose values are of type elem.
func (d *decoder) mapping(n *yaml.Node, elem reflect.Type, path *field.Path) any {
	if n.Kind != yaml.MappingNode {
		d.addf(path, position{n.Line, n.Column}, "expected a mapping, found %s", describe(n))
		return nil
	}
	out := map[string]any{}
	d.eachEntry(n, path, func(key string, keyNode, valueNode *yaml.Node) {
		child := path.Key(key)
		d.record(child, keyNode)
		if v := d.value(valueNode, elem, child); v != nil {
			out[key] = v
		} else if elem.Kind() == reflect.String && isNull(resolveAlias(valueNode)) {
			// An empty label value is valid.
			out[key] = ""
		}
	})
	return out
}

// eachEntry calls fn for each key of a mapping, after checking that the key
// is a string that no earlier entry uses.
func (d *decoder) eachEntry(n *yaml.Node, path *field.Path, fn func(key string, keyNode, valueNode *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, valueNode := resolveAlias(n.Content[i]), n.Content[i+1]
		if keyNode.Kind != yaml.ScalarNode || (keyNode.Tag != "!!str" && keyNode.Tag != "!!merge") {
			d.addf(path, position{keyNode.Line, keyNode.Column}, "expected a string key, found %s", describe(keyNode))
			continue
		}
		if keyNode.Tag == "!!merge" {
			d.addf(path, position{keyNode.Line, keyNode.Column}, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		key := keyNode.Value
		if first, ok := seen[key]; ok {
			d.addf(childPath(path, key), position{keyNode.Line, keyNode.Column},
				"duplicate key %q: it is already set on line %d", key, first.Line)
			continue
		}
		seen[key] = keyNode
		fn(key, keyNode, valueNode)
	}
}

// list checks a sequence whose items are of type elem.
func (d *decoder) list(n *yaml.Node, elem reflect.Type, path *field.Path) any {
	if n.Kind != yaml.SequenceNode {
		d.addf(path, position{n.Line, n.Column}, "expected a list, found %s", describe(n))
		return nil
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		child := path.Index(i)
		d.record(child, item)
		v := d.value(item, elem, child)
		if v == nil && elem.Kind() == reflect.String {
			// Keep the index of later items stable for validation; a
			// null item stays an empty string, which validation reports.
			v = ""
		}
		if v == nil {
			v = zeroJSON(elem)
		}
		out = append(out, v)
	}
	return out
}

// zeroJSON returns the JSON value that decodes to the zero value of t.
func zeroJSON(t reflect.Type) any {
	switch t.Kind() {
	case reflect.Struct:
		return map[string]any{}
	case reflect.String:
		return ""
	}
	return nil
}

// jsonFields maps the JSON names of the fields of struct type t to their
// types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownKeyMessage names the unknown key, a close match when there is one,
// and the keys that are valid at that place.
func unknownKeyMessage(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	message := fmt.Sprintf("unknown key %q", key)
	if match := closestName(key, names); match != "" {
		message += fmt.Sprintf(" (did you mean %q?)", match)
	}
	return message + "; valid keys here are " + strings.Join(names, ", ")
}

// closestName returns the name within edit distance 2 of key, or equal to it
// ignoring case, or "" when there is none.
func closestName(key string, names []string) string {
	best, bestDistance := "", 3
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return name
		}
		if distance := editDistance(strings.ToLower(key), strings.ToLower(name)); distance < bestDistance {
			best, bestDistance = name, distance
		}
	}
	return best
}

// editDistance returns the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous, current = current, previous
	}
	return previous[len(b)]
}

func childPath(path *field.Path, name string) *field.Path {
	if path == nil {
		return field.NewPath(name)
	}
	return path.Child(name)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func isEmptyDocument(n *yaml.Node) bool {
	return n.Kind == yaml.DocumentNode && (len(n.Content) == 0 || isNull(n.Content[0]))
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an unsupported YAML node"
}
