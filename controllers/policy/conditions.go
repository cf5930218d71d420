package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacv2beta3 "github.com/trusted-delivery/trusted-delivery/api/pac/v2beta3"
)

// readyCondition is the Ready condition of an object at a generation.
func readyCondition(generation int64, ready bool, reason, message string) metav1.Condition {
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type:               pacv2beta3.ReadyCondition,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
}

// setReady sets the Ready condition, keeping its last transition time when
// the status does not change, and moves it to the front of the list.
func setReady(conditions *[]metav1.Condition, ready metav1.Condition) {
	meta.SetStatusCondition(conditions, ready)
	i := slices.IndexFunc(*conditions, func(c metav1.Condition) bool { return c.Type == ready.Type })
	if i > 0 {
		c := (*conditions)[i]
		*conditions = slices.Delete(*conditions, i, i+1)
		*conditions = slices.Insert(*conditions, 0, c)
	}
}

// event is a Kubernetes Event to emit about an object.
type event struct {
	eventType string
	reason    string
	message   string
}

// readyEvent returns the event for a change of the Ready condition from
// before to after: Warning with the condition's reason when it is not True
// and its reason or message changes, Normal when it becomes True or changes
// its reason. A healthy condition whose message alone changes, such as a
// PolicySet's count of selected policies while the cache fills, yields no
// event. It returns false when nothing a user would care about changed.
func readyEvent(before *metav1.Condition, after metav1.Condition) (event, bool) {
	if before != nil && before.Status == after.Status && before.Reason == after.Reason &&
		(before.Message == after.Message || after.Status == metav1.ConditionTrue) {
		return event{}, false
	}
	if after.Status == metav1.ConditionTrue {
		return event{eventType: corev1.EventTypeNormal, reason: after.Reason, message: after.Message}, true
	}
	return event{eventType: corev1.EventTypeWarning, reason: after.Reason, message: after.Message}, true
}
