// Package policytest builds the objects that the policy benchmarks evaluate.
package policytest

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Deployment returns a Deployment with the number of containers, each with
// envVars environment variables, and its size as JSON. Each container sets
// resources and a security context, but no probes. Two containers of five
// variables make a typical Deployment of about 1 KiB, and 40 of 60 make one
// of about 200 KiB.
func Deployment(containers, envVars int) (*unstructured.Unstructured, int) {
	list := make([]any, 0, containers)
	for c := range containers {
		env := make([]any, 0, envVars)
		for v := range envVars {
			env = append(env, map[string]any{
				"name":  fmt.Sprintf("SETTING_%03d", v),
				"value": fmt.Sprintf("value-%03d-of-container-%03d-padded-to-look-real", v, c),
			})
		}
		list = append(list, map[string]any{
			"name":  fmt.Sprintf("container-%d", c),
			"image": fmt.Sprintf("registry.example/team/app-%d:1.%d.0", c, c),
			"env":   env,
			"resources": map[string]any{
				"limits":   map[string]any{"cpu": "500m", "memory": "256Mi"},
				"requests": map[string]any{"cpu": "100m", "memory": "128Mi"},
			},
			"securityContext": map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true},
			"ports":           []any{map[string]any{"containerPort": int64(8080), "protocol": "TCP"}},
		})
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			"name":      "web",
			"namespace": "apps",
			"labels":    map[string]any{"app": "web", "owner": "team-a"},
		},
		"spec": map[string]any{
			"replicas": int64(3),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": list},
			},
		},
	}}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		panic(fmt.Sprintf("failed to marshal a Deployment built from Go maps: %v", err))
	}
	return obj, len(data)
}
