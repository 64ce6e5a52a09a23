// Package event serves core/v1 Events, which live for an hour after their last
// write, as kube-apiserver's default --event-ttl.
package event

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

// TTL is how long an Event is kept after its last write, in seconds.
const TTL = 60 * 60

// Strategy returns the strategy of Events, shared by core/v1 and events.k8s.io/v1.
func Strategy() *registry.Strategy {
	s := registry.NewStrategy(true)
	s.Check = func(obj runtime.Object) field.ErrorList {
		e := obj.(*corev1.Event)
		var errs field.ErrorList
		if ns := e.InvolvedObject.Namespace; ns != "" && ns != e.Namespace {
			errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), ns, "does not match event.namespace"))
		}
		if e.Type != "" && e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
			errs = append(errs, field.NotSupported(field.NewPath("type"), e.Type, []string{corev1.EventTypeNormal, corev1.EventTypeWarning}))
		}
		return errs
	}
	s.Fields = Fields
	return s
}

// Fields are the selectable fields of an Event, by their core/v1 names.
func Fields(obj runtime.Object) fields.Set {
	e := obj.(*corev1.Event)
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         source,
		"type":                           e.Type,
	}
}

// ttl keeps an Event for TTL seconds after every write.
func ttl(runtime.Object, uint64, bool) (uint64, error) { return TTL, nil }

func object(e *corev1.Event) string {
	return fmt.Sprintf("%s/%s", e.InvolvedObject.Kind, e.InvolvedObject.Name)
}
