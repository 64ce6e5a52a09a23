package registry

import (
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Resource describes one resource for NewREST.
type Resource struct {
	schema.GroupResource
	SingularName string
	New, NewList func() runtime.Object
	Strategy     *Strategy
	Table        rest.TableConvertor
	ShortNames   []string
	Categories   []string
	// TTL returns how long an object lives after a write, in seconds; nil means
	// forever.
	TTL func(obj runtime.Object, existing uint64, update bool) (uint64, error)
}

// REST is the storage of one resource.
type REST struct {
	*genericregistry.Store
	shortNames, categories []string
}

var (
	_ rest.ShortNamesProvider = (*REST)(nil)
	_ rest.CategoriesProvider = (*REST)(nil)
)

func (r *REST) ShortNames() []string { return r.shortNames }
func (r *REST) Categories() []string { return r.categories }

// NewREST returns the storage of r.
func NewREST(getter generic.RESTOptionsGetter, r Resource) (*REST, error) {
	store, err := NewStore(getter, r)
	if err != nil {
		return nil, err
	}
	return &REST{Store: store, shortNames: r.ShortNames, categories: r.Categories}, nil
}

// NewStore returns the generic registry store of r, for resources that wrap it.
func NewStore(getter generic.RESTOptionsGetter, r Resource) (*genericregistry.Store, error) {
	table := r.Table
	if table == nil {
		table = Table{}
	}
	s := &genericregistry.Store{
		NewFunc:                   r.New,
		NewListFunc:               r.NewList,
		DefaultQualifiedResource:  r.GroupResource,
		SingularQualifiedResource: schema.GroupResource{Group: r.Group, Resource: r.SingularName},
		PredicateFunc:             r.Strategy.predicate,
		CreateStrategy:            r.Strategy,
		UpdateStrategy:            r.Strategy,
		DeleteStrategy:            r.Strategy,
		TableConvertor:            table,
		TTLFunc:                   r.TTL,
	}
	opts, err := getter.GetRESTOptions(r.GroupResource, r.New())
	if err != nil {
		return nil, fmt.Errorf("storage options of %s: %w", r.GroupResource, err)
	}
	if err := s.CompleteWithOptions(&generic.StoreOptions{RESTOptions: opts, AttrFunc: r.Strategy.attrs}); err != nil {
		return nil, fmt.Errorf("storage of %s: %w", r.GroupResource, err)
	}
	return s, nil
}

// Prefix returns the key prefix of a resource: /<group>/<resource>, the core group
// spelled "core".
func Prefix(gr schema.GroupResource) string {
	group := gr.Group
	if group == "" {
		group = "core"
	}
	return "/" + strings.Join([]string{group, gr.Resource}, "/")
}

// SplitStatus gives a resource its status subresource, as a CRD's: updates of
// the object keep its stored status (after s.Prepare), and updates through the
// returned store keep everything but status. setStatus copies the status of
// from into to.
func SplitStatus[T runtime.Object](store *genericregistry.Store, s *Strategy, setStatus func(to, from T)) *genericregistry.Store {
	status := StatusOnly(store, s, func(obj, old runtime.Object) {
		updated := old.DeepCopyObject().(T)
		setStatus(updated, obj.(T))
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(updated).Elem())
	})
	prepare := s.Prepare
	s.Prepare = func(obj, old runtime.Object) {
		if prepare != nil {
			prepare(obj, old)
		}
		if old != nil {
			setStatus(obj.(T), old.(T))
		}
	}
	return status
}

// StatusOnly returns a copy of store for a status subresource: its updates keep
// what keep copies from the stored object (everything but status).
func StatusOnly(store *genericregistry.Store, s *Strategy, keep func(obj, old runtime.Object)) *genericregistry.Store {
	status := *store
	st := *s
	st.Prepare = keep
	status.UpdateStrategy = &st
	return &status
}
