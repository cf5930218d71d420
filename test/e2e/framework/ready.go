package framework

import (
	"fmt"
	"reflect"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ObjectWithConditions is an object that reports metav1.Conditions, as the
// Flux kinds do.
type ObjectWithConditions interface {
	client.Object
	GetConditions() []metav1.Condition
}

// CheckReady returns nil when obj has a Ready condition that is True and
// observed the object's current generation, and otherwise an error that names
// the check that fails. Use it inside Eventually, after getting obj afresh.
func CheckReady(obj ObjectWithConditions) error {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		// Typed objects read through a client usually have an empty TypeMeta.
		kind = reflect.Indirect(reflect.ValueOf(obj)).Type().Name()
	}
	key := client.ObjectKeyFromObject(obj)
	ready := apimeta.FindStatusCondition(obj.GetConditions(), "Ready")
	switch {
	case ready == nil:
		return fmt.Errorf("%s %s has no Ready condition yet", kind, key)
	case ready.ObservedGeneration != obj.GetGeneration():
		return fmt.Errorf("%s %s: Ready condition observed generation %d, want %d",
			kind, key, ready.ObservedGeneration, obj.GetGeneration())
	case ready.Status != metav1.ConditionTrue:
		return fmt.Errorf("%s %s is not ready: %s: %s", kind, key, ready.Reason, ready.Message)
	}
	return nil
}
