package registry

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/storage"
)

// Visible tells whether a request may see a stored object.
type Visible func(runtime.Object) bool

type visibleKey struct{}

// visibility is a request's view of one resource.
type visibility struct {
	resource schema.GroupResource
	visible  Visible
}

// WithVisible returns ctx whose requests of resource see only the objects
// visible lets them: lists and watches leave the others out (a watched object
// that stops being visible is deleted for the watcher, one that becomes
// visible is added), and gets, updates and deletes find no such object. What
// the request reads of other resources (a namespace, by admission) it reads
// as ever.
func WithVisible(ctx context.Context, resource schema.GroupResource, visible Visible) context.Context {
	return context.WithValue(ctx, visibleKey{}, visibility{resource: resource, visible: visible})
}

// visibleFrom returns the request's view of resource, if it has one.
func visibleFrom(ctx context.Context, resource schema.GroupResource) (Visible, bool) {
	v, ok := ctx.Value(visibleKey{}).(visibility)
	if !ok || v.resource != resource {
		return nil, false
	}
	return v.visible, true
}

// visibleLabel is the label a predicate sees on each object, "true" when it
// is visible: the storage's own matching then decides lists and watches. It
// is set on every object, so a label of that name an object carries never
// counts.
const visibleLabel = "visible.internal.warren.dev/request"

var visibleRequirement = func() labels.Requirement {
	r, err := labels.NewRequirement(visibleLabel, selection.Equals, []string{"true"})
	if err != nil {
		panic(err)
	}
	return *r
}()

// visibleOnly narrows p to the objects visible lets through.
func visibleOnly(p storage.SelectionPredicate, visible Visible) storage.SelectionPredicate {
	attrs := p.GetAttrs
	if attrs == nil {
		attrs = storage.DefaultNamespaceScopedAttr
	}
	p.GetAttrs = func(obj runtime.Object) (labels.Set, fields.Set, error) {
		l, f, err := attrs(obj)
		if err != nil {
			return nil, nil, err
		}
		marked := make(labels.Set, len(l)+1)
		for k, v := range l {
			marked[k] = v
		}
		marked[visibleLabel] = "false"
		if visible(obj) {
			marked[visibleLabel] = "true"
		}
		return marked, f, nil
	}
	if p.Label == nil {
		p.Label = labels.Everything()
	}
	p.Label = p.Label.Add(visibleRequirement)
	return p
}

// notVisible is the error of a request for an object it may not see.
func notVisible(obj runtime.Object, s *clusterKeyed) error {
	name := ""
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetName()
	}
	return apierrors.NewNotFound(s.resource, name)
}
