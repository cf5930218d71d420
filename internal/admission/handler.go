// Package admission holds the admission handler that enforces policies:
// it evaluates CREATE and UPDATE requests with the policy engine, denies
// those that violate an enforced policy, and returns violations of policies
// that are not enforced as warnings.
package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/trusted-delivery/trusted-delivery/internal/metrics"
	"github.com/trusted-delivery/trusted-delivery/internal/policy"
	"github.com/trusted-delivery/trusted-delivery/internal/report"
)

// EnforcePath is the path of the Enforcer on the manager's webhook server.
const EnforcePath = "/enforce"

// errorLogInterval is how often the Enforcer logs the errors of one policy;
// the errors in between are counted and reported with the next log line.
const errorLogInterval = time.Minute

// ViolationEvents records violations as Events without blocking.
// *events.Recorder implements it.
type ViolationEvents interface {
	Violation(ctx context.Context, record *report.Record)
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Enforcer is the admission handler of EnforcePath.
type Enforcer struct {
	// Engine evaluates the requests. It must be the engine that the policy
	// reconcilers keep loaded.
	Engine *policy.Engine
	// Namespaces reads the labels of the object's namespace; the manager's
	// cached client keeps this off the API server.
	Namespaces client.Reader
	// Events records an Event for each violation. Nil records none.
	Events ViolationEvents
	// Sink receives a record for each violation. Nil sends none.
	Sink report.Sink
	// ExcludedNamespaces are never enforced. The webhook configuration
	// excludes them already, so this is defence in depth.
	ExcludedNamespaces []string
	// OperatorUsername is the username of the operator's ServiceAccount,
	// system:serviceaccount:<namespace>:<name>. Its requests are never
	// enforced, so that policies cannot block what the operator applies.
	OperatorUsername string

	errorLog errorLimiter
}

var _ admission.Handler = &Enforcer{}

// SetupWithManager registers the Enforcer at EnforcePath on the manager's
// webhook server, adds Events to the manager when it is a runnable, and
// makes the metrics endpoint report the engine's compile errors.
func (h *Enforcer) SetupWithManager(mgr ctrl.Manager) error {
	if h.Engine == nil || h.Namespaces == nil {
		return errors.New("set up the enforcement webhook: Engine and Namespaces are required")
	}
	if runnable, ok := h.Events.(manager.Runnable); ok {
		if err := mgr.Add(runnable); err != nil {
			return fmt.Errorf("add the violation Event recorder to the manager: %w", err)
		}
	}
	metrics.ObservePolicies(h.Engine)
	mgr.GetWebhookServer().Register(EnforcePath, &webhook.Admission{Handler: h})
	return nil
}

// Handle evaluates a request against the policies active in admission mode.
// It denies the request when an enforced policy is violated, and returns the
// violations of the other policies as warnings. Dry-run requests get the same
// response but record no Event and send no record.
func (h *Enforcer) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	operation := string(req.Operation)
	if reason, skip := h.skipReason(&req.AdmissionRequest); skip {
		metrics.AdmissionRequests.WithLabelValues(operation, metrics.DecisionSkipped).Inc()
		return admission.Allowed(reason)
	}
	// The webhook server's logger already carries the namespace, name, resource,
	// user and request ID.
	log := ctrl.LoggerFrom(ctx).WithValues("kind", req.Kind.Kind)

	if !h.Engine.Synced() {
		metrics.AdmissionRequests.WithLabelValues(operation, metrics.DecisionError).Inc()
		return admission.Errored(http.StatusServiceUnavailable,
			errors.New("the policy engine has not loaded the policies yet; retry shortly"))
	}
	review, obj, err := policy.ReviewFromAdmission(req.AdmissionRequest)
	if err != nil {
		metrics.AdmissionRequests.WithLabelValues(operation, metrics.DecisionError).Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	namespaceLabels, err := h.namespaceLabels(ctx, req.Namespace, obj)
	if err != nil {
		metrics.AdmissionRequests.WithLabelValues(operation, metrics.DecisionError).Inc()
		log.Error(err, "failed to read the namespace labels of an admission request")
		return admission.Errored(http.StatusInternalServerError, err)
	}

	results := h.Engine.Evaluate(ctx, policy.ModeAdmission, review, policy.Subject{Object: obj, NamespaceLabels: namespaceLabels})
	decision := Decide(results)
	metrics.AdmissionEvaluationDuration.Observe(time.Since(start).Seconds())
	h.count(operation, decision)
	h.logErrors(log, decision.Errored)

	denied := len(decision.Denied) > 0
	if !review.DryRun {
		h.record(ctx, &req.AdmissionRequest, obj, namespaceLabels, results, denied)
	}

	warnings := append(ErrorWarnings(decision.Errored), Warnings(decision.Warned)...)
	if denied {
		log.V(1).Info("denied an admission request", "policies", policyIDs(decision.Denied), "dryRun", review.DryRun)
		response := admission.Denied(DenialMessage(decision.Denied[0].Object, decision.Denied))
		response.Warnings = warnings
		return response
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// skipReason returns why a request is not evaluated, and false when it is.
func (h *Enforcer) skipReason(req *admissionv1.AdmissionRequest) (string, bool) {
	switch {
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		return "policies are enforced on CREATE and UPDATE only", true
	case req.SubResource != "" && !isEphemeralContainersUpdate(req):
		return "policies are not enforced on subresources other than pods/ephemeralcontainers", true
	case h.OperatorUsername != "" && req.UserInfo.Username == h.OperatorUsername:
		return "requests of the operator are not enforced", true
	case slices.Contains(h.ExcludedNamespaces, namespaceOf(req)):
		return "namespace " + namespaceOf(req) + " is excluded from enforcement", true
	}
	return "", false
}

// isEphemeralContainersUpdate reports whether the request adds ephemeral
// containers to a Pod, as kubectl debug does. Its object is the whole Pod,
// which the Pod policies check.
func isEphemeralContainersUpdate(req *admissionv1.AdmissionRequest) bool {
	return req.SubResource == "ephemeralcontainers" && req.Resource.Group == "" && req.Resource.Resource == "pods"
}

// namespaceOf returns the namespace a request is about: its namespace, or
// the name of a Namespace object, which the webhook's namespaceSelector
// matches against its own labels.
func namespaceOf(req *admissionv1.AdmissionRequest) string {
	if req.Namespace == "" && req.Kind.Group == "" && req.Kind.Kind == "Namespace" {
		return req.Name
	}
	return req.Namespace
}

// namespaceLabels returns the labels of the object's namespace, or of the
// object itself when it is a Namespace. A namespace that does not exist
// has no labels.
func (h *Enforcer) namespaceLabels(ctx context.Context, namespace string, obj *unstructured.Unstructured) (map[string]string, error) {
	if obj.GetAPIVersion() == "v1" && obj.GetKind() == "Namespace" {
		return obj.GetLabels(), nil
	}
	if namespace == "" {
		return nil, nil
	}
	ns := &corev1.Namespace{}
	if err := h.Namespaces.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Namespace %s: %w", namespace, err)
	}
	return ns.Labels, nil
}

// record sends the violations to the Event recorder and the sink.
func (h *Enforcer) record(
	ctx context.Context,
	req *admissionv1.AdmissionRequest,
	obj *unstructured.Unstructured,
	namespaceLabels map[string]string,
	results []policy.Result,
	denied bool,
) {
	if h.Events == nil && h.Sink == nil {
		return
	}
	records := report.AdmissionRecords(time.Now(), req, obj, report.WorkspaceOf(namespaceLabels), results, denied)
	if h.Events != nil {
		for i := range records {
			h.Events.Violation(ctx, &records[i])
		}
	}
	if h.Sink != nil && len(records) > 0 {
		h.Sink.Send(records)
	}
}

func (h *Enforcer) count(operation string, d Decision) {
	for _, group := range []struct {
		results []policy.Result
		result  string
	}{
		{d.Denied, metrics.ResultViolation},
		{d.Warned, metrics.ResultViolation},
		{d.Errored, metrics.ResultError},
		{d.Passed, metrics.ResultPass},
	} {
		for i := range group.results {
			metrics.AdmissionPolicyDecisions.WithLabelValues(group.results[i].PolicyID, group.result).Inc()
		}
	}
	decision := metrics.DecisionAllowed
	switch {
	case len(d.Denied) > 0:
		decision = metrics.DecisionDenied
	case len(d.Warned) > 0:
		decision = metrics.DecisionWarned
	}
	metrics.AdmissionRequests.WithLabelValues(operation, decision).Inc()
}

// logErrors logs the policies that could not be evaluated, at most once per
// errorLogInterval for each policy.
func (h *Enforcer) logErrors(log logr.Logger, errored []policy.Result) {
	for i := range errored {
		r := &errored[i]
		if suppressed, ok := h.errorLog.allow(r.PolicyID, time.Now()); ok {
			log.Error(r.Err, "policy could not be evaluated, so it did not decide the request",
				"policy", r.PolicyID, "suppressedSinceLastLog", suppressed)
		}
	}
}

func policyIDs(results []policy.Result) []string {
	ids := make([]string, len(results))
	for i := range results {
		ids[i] = results[i].PolicyID
	}
	return ids
}

// errorLimiter allows one log line per policy per errorLogInterval and
// counts the errors it holds back.
type errorLimiter struct {
	mu       sync.Mutex
	policies map[string]*errorLogState
}

type errorLogState struct {
	lastLog    time.Time
	suppressed int
}

// allow reports whether to log an error of the policy now, and how many
// errors of it were held back since its last log line.
func (l *errorLimiter) allow(policyID string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.policies == nil {
		l.policies = map[string]*errorLogState{}
	}
	state, ok := l.policies[policyID]
	if !ok {
		l.policies[policyID] = &errorLogState{lastLog: now}
		return 0, true
	}
	if now.Sub(state.lastLog) < errorLogInterval {
		state.suppressed++
		return 0, false
	}
	suppressed := state.suppressed
	state.lastLog, state.suppressed = now, 0
	return suppressed, true
}
