package framework

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateNamespace creates a namespace named prefix plus a random suffix and
// returns its name, so that specs sharing one API server do not collide.
//
// NOTE: envtest runs no namespace controller, so a deleted namespace stays
// Terminating with its objects in place until the control plane stops.
func CreateNamespace(ctx context.Context, c client.Client, prefix string) (string, error) {
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(ctx, namespace); err != nil {
		return "", fmt.Errorf("failed to create a namespace with prefix %q: %w", prefix, err)
	}
	return namespace.Name, nil
}
