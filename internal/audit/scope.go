package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// DefaultExcludedResources are never audited when the policies target every
// kind: Events are records of what happened, not desired state, and there
// are many of them.
var DefaultExcludedResources = []string{"events", "events.events.k8s.io"}

// target is one resource to list.
type target struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

func (t target) String() string {
	return t.gvr.GroupResource().String()
}

// scope is the set of resources that one scan lists.
type scope struct {
	targets []target
	// failures are the group versions that discovery could not read.
	failures []report.ScanFailure
}

// resolveScope discovers the listable resources of the preferred version of
// each API group and selects those whose kind is in kinds, or all of them
// when allKinds is set, minus the excluded resources ("resource" for the
// core group, "resource.group" otherwise). Group versions that fail
// discovery are returned as failures. Only a discovery that returned
// nothing is an error.
func resolveScope(ctx context.Context, client discovery.DiscoveryInterfaceWithContext, kinds []string, allKinds bool, excluded []string) (scope, error) {
	lists, err := discovery.ServerPreferredResourcesWithContext(ctx, client)
	var s scope
	if err != nil {
		var groupErr *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &groupErr) || len(lists) == 0 {
			return s, fmt.Errorf("discover API resources: %w", err)
		}
		s.failures = groupFailures(groupErr)
	}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			if !listable(res) {
				continue
			}
			if !allKinds && !slices.Contains(kinds, res.Kind) {
				continue
			}
			groupResource := schema.GroupResource{Group: gv.Group, Resource: res.Name}.String()
			if slices.Contains(excluded, groupResource) {
				continue
			}
			s.targets = append(s.targets, target{gvr: gv.WithResource(res.Name), kind: res.Kind, namespaced: res.Namespaced})
		}
	}
	sort.Slice(s.targets, func(i, j int) bool { return s.targets[i].String() < s.targets[j].String() })
	return s, nil
}

// listable reports whether the resource is a top-level resource that
// supports list. Subresources such as pods/status are not.
func listable(res metav1.APIResource) bool {
	return !strings.Contains(res.Name, "/") && slices.Contains(res.Verbs, "list")
}

func groupFailures(err *discovery.ErrGroupDiscoveryFailed) []report.ScanFailure {
	failures := make([]report.ScanFailure, 0, len(err.Groups))
	for gv, cause := range err.Groups {
		failures = append(failures, report.ScanFailure{
			GroupVersion: gv,
			Message:      fmt.Sprintf("discovery of %s failed, so its kinds were not audited: %v", gv, cause),
		})
	}
	sort.Slice(failures, func(i, j int) bool { return failures[i].GroupVersion.String() < failures[j].GroupVersion.String() })
	return failures
}
