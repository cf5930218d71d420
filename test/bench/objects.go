package main

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type benchObject struct {
	name string
	obj  *unstructured.Unstructured
	size int
}

// benchObjects returns a typical Deployment (2 containers) and one of about
// 200 KiB of JSON (40 containers of 60 env vars each).
func benchObjects() []benchObject {
	typical, typicalSize := deployment(2, 5)
	large, largeSize := deployment(40, 60)
	return []benchObject{{"typical", typical, typicalSize}, {"large", large, largeSize}}
}

// deployment returns a Deployment with the containers, each with the env
// vars, and its size as JSON.
func deployment(containers, envVars int) (*unstructured.Unstructured, int) {
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
	data, _ := json.Marshal(obj.Object)
	return obj, len(data)
}
