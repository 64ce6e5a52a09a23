package event

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewREST returns the storage of events in group gr's group; both groups store
// core/v1 Events under the same keys.
func NewREST(getter generic.RESTOptionsGetter, group string) (*registry.REST, error) {
	r := registry.Resource{
		GroupResource: schema.GroupResource{Group: group, Resource: "events"},
		SingularName:  "event",
		New:           func() runtime.Object { return &corev1.Event{} },
		NewList:       func() runtime.Object { return &corev1.EventList{} },
		Strategy:      Strategy(),
		TTL:           ttl,
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Type", "string", "Type of this event"),
				registry.Column("Reason", "string", "Why the event was emitted"),
				registry.Column("Object", "string", "The object the event is about"),
				registry.Column("Message", "string", "What happened"),
			},
			Cells: func(obj runtime.Object) []any {
				e := obj.(*corev1.Event)
				return []any{e.Type, e.Reason, object(e), e.Message}
			},
		},
	}
	if group == "" {
		r.ShortNames = []string{"ev"}
	}
	return registry.NewREST(getter, r)
}
