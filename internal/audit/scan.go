package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// Run runs one scan and writes its results: the reports, the Policy and
// Workspace status and the metrics. It returns the results, and an error
// when the scan could not start, was cancelled (nothing is written then)
// or a write failed.
func (a *Auditor) Run(ctx context.Context) (*report.AuditResults, error) {
	a.Options.defaults()
	log := ctrl.LoggerFrom(ctx)
	results := report.NewAuditResults(time.Now(), a.Options.MaxResults)

	active := a.Engine.ActivePolicies(policy.ModeAudit)
	for i := range active {
		results.SeePolicy(policy.PolicyID(&active[i]))
	}
	var sc scope
	if len(active) > 0 {
		kinds, allKinds := policy.TargetKinds(active)
		var err error
		sc, err = resolveScope(ctx, a.Discovery, kinds, allKinds, a.Options.ExcludedResources)
		if err != nil {
			return nil, err
		}
	}
	for _, f := range sc.failures {
		log.Error(nil, "API group version not audited because discovery failed", "groupVersion", f.GroupVersion.String(),
			"message", f.Message)
		auditDiscoveryFailures.WithLabelValues(f.GroupVersion.String()).Inc()
		results.AddFailure(f)
	}
	namespaceLabels, err := a.namespaceLabels(ctx)
	if err != nil {
		return nil, err
	}

	log.V(1).Info("audit scan started", "policies", len(active), "resources", len(sc.targets))
	scanStart := time.Now()
	if err := a.scan(ctx, log, sc.targets, namespaceLabels, results); err != nil {
		return results, fmt.Errorf("%w: %w", errCancelled, err)
	}
	results.MarkComplete()
	writeStart := time.Now()
	err = a.write(ctx, log, results)
	log.V(1).Info("audit scan results written", "scanDuration", writeStart.Sub(scanStart),
		"writeDuration", time.Since(writeStart), "objects", results.Objects())
	return results, err
}

// namespaceLabels returns the labels of every namespace, read from the API
// server so that the scan uses the current tenant labels.
func (a *Auditor) namespaceLabels(ctx context.Context) (map[string]map[string]string, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := a.APIReader.List(ctx, list); err != nil {
		return nil, fmt.Errorf("list namespaces for the audit: %w", err)
	}
	labels := make(map[string]map[string]string, len(list.Items))
	for i := range list.Items {
		labels[list.Items[i].Name] = list.Items[i].Labels
	}
	return labels, nil
}

// scan lists the targets one page at a time and evaluates the objects in a
// pool of Options.Workers goroutines. The channel between them holds at
// most one object per worker, so at most about two pages are in memory.
// It returns an error only when ctx ended.
func (a *Auditor) scan(
	ctx context.Context,
	log logr.Logger,
	targets []target,
	namespaceLabels map[string]map[string]string,
	results *report.AuditResults,
) error {
	objects := make(chan *unstructured.Unstructured, a.Options.Workers)
	var wg sync.WaitGroup
	for range a.Options.Workers {
		wg.Go(func() {
			for obj := range objects {
				a.evaluate(ctx, obj, namespaceLabels, results)
			}
		})
	}
	var err error
	for _, t := range targets {
		if err = a.listTarget(ctx, log, t, objects, results); err != nil {
			break
		}
	}
	close(objects)
	wg.Wait()
	return err
}

// listTarget sends the objects of one resource to out, page by page. A
// resource that cannot be listed is recorded as a scan failure and skipped.
func (a *Auditor) listTarget(
	ctx context.Context,
	log logr.Logger,
	t target,
	out chan<- *unstructured.Unstructured,
	results *report.AuditResults,
) error {
	resource := a.Dynamic.Resource(t.gvr)
	opts := metav1.ListOptions{Limit: a.Options.PageSize}
	for {
		page, err := resource.List(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if token, ok := inconsistentContinue(err); ok && opts.Continue != "" {
				// The continue token expired because the scan was slower
				// than etcd compaction. The token in the error continues
				// with a newer, possibly inconsistent, snapshot.
				log.Info("list continue token expired; continuing from a newer snapshot", "resource", t.String())
				opts.Continue = token
				continue
			}
			a.listFailed(log, t, err, results)
			return nil
		}
		for i := range page.Items {
			obj := &page.Items[i]
			if !a.Options.IncludeOwned && len(obj.GetOwnerReferences()) > 0 {
				auditSkippedOwned.Inc()
				continue
			}
			if obj.GetKind() == "" {
				obj.SetGroupVersionKind(t.gvr.GroupVersion().WithKind(t.kind))
			}
			select {
			case out <- obj:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		opts.Continue = page.GetContinue()
		if opts.Continue == "" {
			return nil
		}
	}
}

// inconsistentContinue returns the continue token that a 410 Expired
// response carries for listing on from a newer snapshot.
func inconsistentContinue(err error) (string, bool) {
	if !apierrors.IsResourceExpired(err) {
		return "", false
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok {
		return "", false
	}
	token := status.Status().Continue
	return token, token != ""
}

func (a *Auditor) listFailed(log logr.Logger, t target, err error, results *report.AuditResults) {
	gv := t.gvr.GroupVersion()
	log.Error(err, "resource not audited because listing it failed", "resource", t.String(), "groupVersion", gv.String())
	auditListFailures.WithLabelValues(gv.String(), t.gvr.Resource).Inc()
	results.AddFailure(report.ScanFailure{
		GroupVersion: gv,
		Resource:     t.gvr.Resource,
		Kind:         t.kind,
		Message:      fmt.Sprintf("listing %s failed, so it was not audited: %v", t.String(), err),
	})
}

// evaluate checks one object against the audit-mode policies and records
// the results, the violation records and the Events.
func (a *Auditor) evaluate(
	ctx context.Context,
	obj *unstructured.Unstructured,
	namespaceLabels map[string]map[string]string,
	results *report.AuditResults,
) {
	labels := namespaceLabels[obj.GetNamespace()]
	workspace := report.WorkspaceOf(labels)
	evaluated := a.Engine.Evaluate(ctx, policy.ModeAudit, policy.ReviewFromObject(obj),
		policy.Subject{Object: obj, NamespaceLabels: labels})
	results.Add(obj.GetNamespace(), workspace, evaluated)
	gvk := obj.GroupVersionKind()
	auditObjects.WithLabelValues(gvk.Group, gvk.Kind).Inc()

	records := report.AuditRecords(results.Time, obj, workspace, evaluated)
	if len(records) == 0 {
		return
	}
	if a.Sink != nil {
		a.Sink.Send(records)
	}
	if a.Events != nil {
		for i := range records {
			a.Events.Violation(ctx, &records[i])
		}
	}
}
