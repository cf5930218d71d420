package cli

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trusted-delivery/trusted-delivery/internal/tenancy"
)

// Keys that come first, in this order, in every printed object and in its
// metadata. The other keys follow in alphabetical order.
var (
	leadingObjectKeys   = []string{"apiVersion", "kind", "metadata"}
	leadingMetadataKeys = []string{"name", "namespace", "labels", "annotations"}
)

// writeObjects prints objects as a YAML stream with "---" before each
// document. Keys are in a stable order: apiVersion, kind and metadata
// first, name, namespace, labels and annotations first in metadata, and
// the rest alphabetical. Both outputs of create tenants and the diff of
// --dry-run use it, so their text is the same for the same object.
func writeObjects(w io.Writer, objects []*unstructured.Unstructured) error {
	for _, obj := range objects {
		data, err := marshalObject(obj.Object)
		if err != nil {
			return fmt.Errorf("render %s %s as YAML: %w", obj.GetKind(), objectName(obj), err)
		}
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// marshalObject renders one object as YAML in the stable key order.
func marshalObject(object map[string]any) ([]byte, error) {
	node, err := yamlNode(object, leadingObjectKeys)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(node); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// yamlNode converts a JSON-style value into a YAML node. leading lists the
// keys of a mapping that come before the alphabetical rest.
func yamlNode(value any, leading []string) (*yaml.Node, error) {
	switch v := value.(type) {
	case map[string]any:
		node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, key := range orderedKeys(v, leading) {
			var childLeading []string
			if slices.Equal(leading, leadingObjectKeys) && key == "metadata" {
				childLeading = leadingMetadataKeys
			}
			child, err := yamlNode(v[key], childLeading)
			if err != nil {
				return nil, err
			}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
		}
		return node, nil
	case []any:
		node := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range v {
			child, err := yamlNode(item, nil)
			if err != nil {
				return nil, err
			}
			node.Content = append(node.Content, child)
		}
		return node, nil
	default:
		node := &yaml.Node{}
		if err := node.Encode(v); err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && strings.Contains(s, "\n") {
			node.Style = yaml.LiteralStyle
		}
		return node, nil
	}
}

// orderedKeys returns the keys of m: those in leading first, in that order,
// then the rest alphabetically.
func orderedKeys(m map[string]any, leading []string) []string {
	keys := make([]string, 0, len(m))
	for _, key := range leading {
		if _, ok := m[key]; ok {
			keys = append(keys, key)
		}
	}
	rest := make([]string, 0, len(m))
	for key := range m {
		if !slices.Contains(leading, key) {
			rest = append(rest, key)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

// toUnstructured converts typed objects for printing and applying: without
// status, creationTimestamp and empty objects under spec.
func toUnstructured(objects []client.Object) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objects))
	for _, obj := range objects {
		u, err := tenancy.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// objectName returns namespace/name, or name for a cluster-scoped object.
func objectName(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
