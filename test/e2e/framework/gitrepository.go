package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PublishGitRepository creates the GitRepository namespace/name, or reuses it
// when it exists, and writes its status as source-controller would after
// storing artifact: the artifact, and Ready and ArtifactInStorage conditions
// set to True. kustomize-controller then fetches artifact.URL for every
// Kustomization that refers to the GitRepository. Call it again with a new
// artifact to publish a new revision.
//
// No source-controller may run next to it, because that controller would
// replace the status with the result of cloning spec.url.
func PublishGitRepository(
	ctx context.Context,
	c client.Client,
	namespace, name string,
	artifact *meta.Artifact,
) (*sourcev1.GitRepository, error) {
	if artifact == nil {
		return nil, fmt.Errorf("invalid GitRepository %s/%s: artifact is nil", namespace, name)
	}

	repository := &sourcev1.GitRepository{}
	key := client.ObjectKey{Namespace: namespace, Name: name}
	err := c.Get(ctx, key, repository)
	switch {
	case apierrors.IsNotFound(err):
		repository = &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: sourcev1.GitRepositorySpec{
				// Both fields are required but nothing reads them, because no
				// source-controller runs. The URL names the artifact server.
				URL:      artifact.URL,
				Interval: metav1.Duration{Duration: 10 * time.Minute},
			},
		}
		if err := c.Create(ctx, repository); err != nil {
			return nil, fmt.Errorf("failed to create GitRepository %s: %w", key, err)
		}
	case err != nil:
		return nil, fmt.Errorf("failed to get GitRepository %s: %w", key, err)
	}

	base := repository.DeepCopy()
	repository.Status.Artifact = artifact.DeepCopy()
	repository.Status.ObservedGeneration = repository.Generation
	message := fmt.Sprintf("stored artifact for revision '%s'", artifact.Revision)
	for _, conditionType := range []string{meta.ReadyCondition, sourcev1.ArtifactInStorageCondition} {
		apimeta.SetStatusCondition(&repository.Status.Conditions, metav1.Condition{
			Type:               conditionType,
			Status:             metav1.ConditionTrue,
			ObservedGeneration: repository.Generation,
			Reason:             meta.SucceededReason,
			Message:            message,
		})
	}
	// The optimistic lock makes a concurrent status writer fail the patch
	// instead of having its conditions silently replaced.
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := c.Status().Patch(ctx, repository, patch); err != nil {
		return nil, fmt.Errorf("failed to set the status.artifact of GitRepository %s: %w", key, err)
	}
	return repository, nil
}
