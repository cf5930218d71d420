// Package policies contains the baseline policy library: Weave GitOps format
// Policy manifests with our own Rego, and the PolicySet that selects them for
// audit.
package policies

import "embed"

// Manifests contains every policy manifest of the baseline library and the
// baseline PolicySet, one YAML document per file at the root of the FS.
//
// Each policy's Rego module defines the set violation. An element carries msg,
// violating_key (a JSON path into the object) and recommended_value: the value
// to set at violating_key, or null when the key should be removed or when the
// right value depends on the workload.
//
//go:embed *.yaml
var Manifests embed.FS
